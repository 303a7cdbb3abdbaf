"""`make bench-own-data`: every examples/ configuration, unchanged, on real public files.

Real files first: each set in the shared data folder (`--data`, default ../shared/data: MovieLens
100K `u.data`, the Amazon Electronics ratings sample, the Diginetica session sample, the Taobao
UserBehavior sample; its README describes them) is copied as it is into a home of its own under
data/bench/own-data/<example>/, and `recomart demo` runs there with the example's configuration:
ingest, dbt, the gate, the bounded model search, training and the champion gate. A set whose
example cannot run yet (the Instacart export needs the relational-export issue) is reported as
such, not skipped in silence.

Layouts without a real file here (MovieLens latest `ratings.csv` + `movies.csv`, a UCI Online
Retail export, a RetailRocket clickstream, MovieLens 1M `ratings.dat`) are rendered from
MovieLens 100K (`--movielens`) and reported apart, labelled as renderings: they show that the
layout is read, not how a model does on that kind of shop.

Per set, from the reports the run wrote: rows in / clean / quarantined / rejected, lines combined
into one event, the data's repeat share, the gate, the search's time against its budget, the
chosen family and repeat policy, the model's NDCG@K against popularity and against the repeat
baseline with the gate's confidence interval of each gain, promoted or not, wall time and peak
memory. Written to reports/bench_own_data.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from models_ml import families
from recomart.bench.demo import _run
from recomart_core.env import PROJECT_ROOT
from recomart_core.settings import parse

REPORT = "bench_own_data"
# the shared folder of real files beside the project; $RECOMART_SHARED_DATA elsewhere
SHARED_DATA = Path(os.environ.get("RECOMART_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))
# example -> its real file(s) in the shared data folder
REAL = {
    "movielens-100k": ("movielens-100k/u.data",),
    "amazon-electronics": ("amazon-electronics-sample/ratings_Electronics.csv",),
    "diginetica": ("diginetica-sample/sample_train-item-views.csv",),
    "taobao": ("taobao-userbehavior-sample/UserBehavior.csv",),
}
NOT_RUNNABLE = {
    "instacart": (
        "instacart-sample",
        "a relational export (orders, order lines, products) without timestamps: needs the"
        " relational-export issue (31); see examples/instacart/README.md",
    )
}
RENDERED = ("movielens-latest", "online-retail", "retailrocket", "movielens-1m")
# a synthetic long tail at the size the model search must keep its budget on: 100,000 ratings of
# 10,000 items (long_tail_ratings) in the movielens-latest layout, through that example's config
SYNTHETIC = {"long-tail-10k": "movielens-latest"}
GUEST_SHARE, CANCEL_SHARE, HALF_STAR_SHARE = 0.25, 0.02, 0.3


def read_movielens(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """u.data (user, item, rating, seconds) and items.tsv (item_id, title, release_year, genres)."""
    ratings = pd.read_csv(folder / "u.data", sep="\t", header=None, names=["u", "i", "r", "t"])
    items = pd.read_csv(folder / "items.tsv", sep="\t", dtype=str)
    return ratings, items


def render_layouts(folder: Path, out: Path, seed: int = 1) -> dict[str, int]:
    """MovieLens 100K written in the layouts of RENDERED under out/<example>/; rows per example.

    `ratings.csv` with half stars (30 % of the ratings above one star lose half a star) and
    `movies.csv` with pipe-separated genres; a UCI Online Retail export (SKUs, `17850.0`
    customer ids, month-first UK local times, a quarter of guest lines, 2 % cancelled lines); a
    RetailRocket clickstream (millisecond times, views / addtocart / transaction from the
    stars, plus a view before half of them); `ratings.dat` with `::` between fields."""
    ratings, items = read_movielens(folder)
    rng = np.random.default_rng(seed)
    n = len(ratings)
    for name in RENDERED:
        (out / name).mkdir(parents=True, exist_ok=True)

    movie_id = ratings["i"] * 7 + 3  # sparse ids, as ml-latest has
    half = (rng.random(n) < HALF_STAR_SHARE) & (ratings["r"] > 1)
    stars = ratings["r"] - np.where(half, 0.5, 0.0)
    pd.DataFrame(
        {
            "userId": ratings["u"],
            "movieId": movie_id,
            "rating": stars.map("{:.1f}".format),
            "timestamp": ratings["t"],
        }
    ).sort_values(["userId", "movieId"]).to_csv(
        out / "movielens-latest" / "ratings.csv", index=False
    )
    year = pd.to_numeric(items["release_year"], errors="coerce").fillna(1995).astype(int)
    genres = items["genres"].fillna("(no genres listed)").str.replace("Children's", "Children")
    pd.DataFrame(
        {
            "movieId": items["item_id"].astype(int) * 7 + 3,
            "title": items["title"] + " (" + year.astype(str) + ")",
            "genres": genres.str.replace(" ", "|"),
        }
    ).to_csv(out / "movielens-latest" / "movies.csv", index=False)

    codes = np.arange(ratings["i"].max() + 1)
    suffix = np.where(codes % 3 > 0, np.array(list("ABCDEFG"))[codes % 7], "")
    sku = np.char.add((20_000 + codes * 37).astype(str), suffix)
    local = pd.to_datetime(ratings["t"], unit="s", utc=True).dt.tz_convert("Europe/London")
    when = (local.dt.month.astype(str) + "/" + local.dt.day.astype(str) + "/"
            + local.dt.year.astype(str) + " " + local.dt.hour.astype(str) + ":"
            + local.dt.minute.astype(str).str.zfill(2))  # fmt: skip
    invoice = (536_365 + (ratings["u"] * 1000 + ratings["t"] // 86_400 % 1000) % 400_000).astype(
        str
    )
    cancel, guest = rng.random(n) < CANCEL_SHARE, rng.random(n) < GUEST_SHARE
    customer = (ratings["u"] + 12_345).astype(float).map("{:.1f}".format)
    pd.DataFrame(
        {
            "InvoiceNo": np.where(cancel, "C" + invoice, invoice),
            "StockCode": sku[ratings["i"]],
            "Description": "WHITE HANGING HEART T-LIGHT HOLDER, RED",
            "Quantity": np.where(cancel, -ratings["r"], ratings["r"] * rng.integers(1, 4, n)),
            "InvoiceDate": when,
            "UnitPrice": rng.uniform(0.3, 12, n).round(2),
            "CustomerID": np.where(guest, "", customer),
            "Country": "United Kingdom",
        }
    ).to_csv(out / "online-retail" / "online_retail.csv", index=False)

    event = np.select([ratings["r"] >= 5, ratings["r"] >= 4], ["transaction", "addtocart"], "view")
    clicks = pd.DataFrame(
        {"timestamp": ratings["t"] * 1000 + rng.integers(0, 999, n),
         "visitorid": ratings["u"] + 100_000, "event": event, "itemid": ratings["i"] + 400_000,
         "transactionid": np.where(event == "transaction", (np.arange(n) + 1000).astype(str), "")}
    )  # fmt: skip
    viewed = clicks[rng.random(n) < 0.5].assign(
        timestamp=lambda f: f["timestamp"] - 60_000, event="view", transactionid=""
    )
    pd.concat([clicks, viewed]).sort_values("timestamp", kind="stable").to_csv(
        out / "retailrocket" / "events.csv", index=False
    )
    lines = ratings.astype(str).agg("::".join, axis=1)
    (out / "movielens-1m" / "ratings.dat").write_text("\n".join(lines) + "\n")
    return {"movielens-latest": n, "online-retail": n, "retailrocket": n + len(viewed),
            "movielens-1m": n}  # fmt: skip


def long_tail_ratings(
    n_users: int = 700,
    n_items: int = 10_000,
    n_ratings: int = 100_000,
    n_groups: int = 20,
    taste: float = 30.0,
    tail: float = 0.9,
    seed: int = 7,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A MovieLens-"latest"-like file (userId, movieId, rating 0.5-5, timestamp) and its
    movies.csv (movieId, title, genres): item popularity a power law (exponent `tail`), users'
    activity log-normal (at least 20 ratings), each user `taste` times likelier to rate the
    items of their own group, active over a log-normal span somewhere in 20 years. The
    defaults are the 100,000-rating, 10,000-item file of SYNTHETIC (the README's search figures)."""
    rng = np.random.default_rng(seed)
    popularity = (1.0 / (np.arange(n_items) + 10.0) ** tail)[rng.permutation(n_items)]
    item_group = rng.integers(0, n_groups, n_items)
    user_group = rng.integers(0, n_groups, n_users)
    activity = np.maximum(rng.lognormal(0, 1.1, n_users), 0.05)
    counts = np.maximum(20, np.round(activity / activity.sum() * n_ratings)).astype(int)
    frames = []
    for user in range(n_users):
        n = min(counts[user], n_items // 2)
        p = popularity * np.where(item_group == user_group[user], taste, 1.0)
        items = rng.choice(n_items, size=n, replace=False, p=p / p.sum())
        liked = item_group[items] == user_group[user]
        stars = np.round((np.where(liked, 4.0, 3.0) + rng.normal(0, 0.9, n)) * 2) / 2
        start = rng.uniform(0, 20 * 365 * 86_400)
        span = rng.lognormal(np.log(60 * 86_400), 1.5)
        seconds = 820_000_000 + start + np.sort(rng.uniform(0, span, n))
        frames.append(
            pd.DataFrame(
                {
                    "userId": user + 1,
                    "movieId": items + 1,
                    "rating": np.clip(stars, 0.5, 5.0),
                    "timestamp": seconds.astype(np.int64),
                }
            )
        )
    movies = pd.DataFrame(
        {
            "movieId": np.arange(1, n_items + 1),
            "title": [f"Movie {i}" for i in range(1, n_items + 1)],
            "genres": [f"genre{g}" for g in item_group],
        }
    )
    return pd.concat(frames, ignore_index=True), movies


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _comparison(promotion: dict, other: str) -> dict | None:
    found = [c for c in promotion.get("comparisons", []) if c.get("other") == other]
    return found[0] if found else None


def figures(home: Path, example: str) -> dict[str, Any]:
    """What one example's run reports: rows per place, the gate, the search, the model."""
    settings = parse(tomllib.loads((home / "recomart.toml").read_text()))
    families.check(settings.train)
    reports = home / settings.paths.reports
    metrics = _json(reports / "train_metrics.json")
    quality = _json(reports / "data_quality_report.json").get("runs", [{}])[-1]
    tuning = _json(reports / "tuning.json")
    transform = _json(reports / "transform.json")
    with duckdb.connect(str(home / settings.paths.warehouse), read_only=True) as con:
        rows_in, clean, quarantined, rejected = con.execute(
            "select (select sum(rows) from raw_interactions.source_files),"
            " (select count(*) from marts.interactions),"
            " (select count(*) from raw_interactions.interactions_quarantine),"
            " (select count(*) from marts.rejected_interactions)"
        ).fetchone()
    k = metrics.get("k", settings.train.k)
    metric = f"ndcg_at_{k}"
    promotion = metrics.get("promotion", {})
    best = tuning.get("best") or {}
    out: dict[str, Any] = {
        "rows_in": int(rows_in or 0),
        "clean": clean,
        "quarantined": quarantined,
        "rejected": rejected,
        "combined_lines": transform.get("combined_lines"),
        "repeats": transform.get("repeats"),
        "gate_passed": quality.get("gate_passed"),
        "quality_score": quality.get("overall_score"),
        "search_seconds": tuning.get("elapsed_s"),
        "search_budget_s": tuning.get("budget_s", settings.train.tune.budget_s),
        "search_skipped": len(tuning.get("skipped_candidates", tuning.get("skipped", []))),
        "search_choice": best.get("family"),
        "search_verdict": tuning.get("verdict"),
        "served_baseline": (tuning.get("served_baseline") or {}).get("name"),
        "family": metrics.get("family"),
        "repeatable_events": settings.train.repeatable_events,
        "repeat_weight": (metrics.get("evaluation", {}).get("repeat_policy") or {}).get(
            "repeat_weight"
        ),
        "holdout": metrics.get("evaluation", {}).get("label"),
        "n_eval_users": metrics.get("n_eval_users"),
        "ndcg": metrics.get("model", {}).get(metric),
        "popularity_ndcg": metrics.get("popularity", {}).get(metric),
        "repeat_ndcg": metrics.get("repeat", {}).get(metric),
        "vs_popularity": _comparison(promotion, "popularity"),
        "vs_repeat": _comparison(promotion, "repeat"),
        "promoted": promotion.get("promote"),
        "reason": promotion.get("reason"),
    }
    return out


def _prepare(home: Path, example: str, files: list[Path]) -> None:
    """A fresh home with the example's configuration, unchanged, and its input files where the
    configuration looks for them."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    config = PROJECT_ROOT / "examples" / example / "recomart.toml"
    shutil.copyfile(config, home / "recomart.toml")
    target = home / Path(parse(tomllib.loads(config.read_text())).paths.interactions_glob).parent
    target.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copyfile(path, target / path.name)


def run_example(
    root: Path, example: str, files: list[Path], name: str | None = None
) -> dict[str, Any]:
    """`recomart demo` in root/<name or example> on the files, with the example's config."""
    home = root / (name or example)
    _prepare(home, example, files)
    seconds, peak = _run(["demo"], home)
    return {"seconds": round(seconds, 1), "peak_gb": round(peak, 2), **figures(home, example)}


def policy_contrast(root: Path, example: str) -> dict[str, Any] | None:
    """For an example whose configuration lets items come back ([train] repeatable_events):
    `recomart train` ([train] as written, no search) on copies of its home's marts, once with
    its policy and once with none (every known item excluded, the default), so that the
    policy's effect is measured with everything else equal. None for the other examples."""
    source = root / example
    settings = parse(tomllib.loads((source / "recomart.toml").read_text()))
    families.check(settings.train)
    if not settings.train.repeatable_events:
        return None
    out = {}
    for label, events in (("with_policy", settings.train.repeatable_events), ("none", [])):
        home = root / f"{example}-policy-{label}"
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(
            source, home, ignore=shutil.ignore_patterns("mlflow", "models", "bench.log")
        )
        text = (home / "recomart.toml").read_text()
        (home / "recomart.toml").write_text(_with_train(text, events))
        seconds, _ = _run(["train"], home)
        metrics = figures(home, example)
        out[label] = {
            "repeatable_events": events,
            "seconds": round(seconds, 1),
            **{key: metrics[key] for key in ("family", "holdout", "n_eval_users", "ndcg",
                                             "popularity_ndcg", "repeat_ndcg", "vs_popularity",
                                             "vs_repeat", "promoted")},
        }  # fmt: skip
    return out


def _with_train(text: str, repeatable: list[str]) -> str:
    """A configuration's text with [train] repeatable_events set and no search in the demo."""
    import tomlkit

    document = tomlkit.parse(text)
    train = document.setdefault("train", tomlkit.table())
    train["repeatable_events"] = repeatable
    train.setdefault("tune", tomlkit.table())["in_demo"] = False
    return tomlkit.dumps(document)


def bench(
    data: Path, movielens: Path, root: Path, rendered: bool = True, only: set[str] | None = None
) -> dict:
    """Run the sets (only those named in `only`, when given) and return their figures by group:
    real, not_runnable, rendered, synthetic."""
    results: dict[str, dict] = {"real": {}, "not_runnable": {}, "rendered": {}, "synthetic": {}}

    def wanted(name: str) -> bool:
        return only is None or name in only

    for example, names in REAL.items():
        if not wanted(example):
            continue
        files = [data / name for name in names]
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            print(f"{example}: skipped, not found: {', '.join(missing)}", flush=True)
            continue
        print(f"{example}: recomart demo on {', '.join(f.name for f in files)}", flush=True)
        results["real"][example] = {"source": [str(f) for f in files],
                                    **run_example(root, example, files)}  # fmt: skip
        contrast = policy_contrast(root, example)
        if contrast:
            results["real"][example]["policy_contrast"] = contrast
    for example, (folder, why) in NOT_RUNNABLE.items():
        if (data / folder).exists() and wanted(example):
            results["not_runnable"][example] = {"source": str(data / folder), "why": why}
    if rendered and (movielens / "u.data").exists() and any(map(wanted, RENDERED)):
        rendering = root / "rendered-files"
        shutil.rmtree(rendering, ignore_errors=True)
        written = render_layouts(movielens, rendering)
        for example in filter(wanted, RENDERED):
            print(f"{example} (rendered from MovieLens 100K): recomart demo", flush=True)
            files = sorted((rendering / example).iterdir())
            results["rendered"][example] = {"rows_written": written[example],
                                            **run_example(root, example, files)}  # fmt: skip
    for name, example in SYNTHETIC.items():
        if not (rendered and wanted(name)):
            continue
        print(f"{name} (synthetic, {example} layout): recomart demo", flush=True)
        folder = root / f"{name}-files"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        ratings, movies = long_tail_ratings()
        ratings.to_csv(folder / "ratings.csv", index=False)
        movies.to_csv(folder / "movies.csv", index=False)
        results["synthetic"][name] = {"rows_written": len(ratings), "layout": example,
                                      **run_example(root, example, sorted(folder.iterdir()),
                                                    name)}  # fmt: skip
    return results


def _gain(comparison: dict | None) -> str:
    if not comparison:
        return "-"
    return f"{comparison['gain']:+.4f} [{comparison['low']:+.4f}, {comparison['high']:+.4f}]"


def _ndcg(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def render(results: dict) -> str:
    lines = []
    header = (
        "| set | rows in | clean / quarantined / rejected | gate | search (budget) | chosen |"
        " repeats allowed | nDCG@10 model / popularity / repeat | gain vs popularity [95 % CI]"
        " | gain vs repeat [95 % CI] | promoted | run | peak |"
    )
    groups = (
        ("Real files", "real"),
        ("Renderings of MovieLens 100K (layouts without a real file here)", "rendered"),
        ("Synthetic (the search's size target: 100,000 ratings, 10,000 items)", "synthetic"),
    )
    for title, group in groups:
        if not results.get(group):
            continue
        lines += [f"**{title}**", "", header, "|" + "---|" * 13]
        for name, r in results[group].items():
            search = (
                "-" if r["search_seconds"] is None
                else f"{r['search_seconds']:.0f} s ({r['search_budget_s']:.0f} s)"
            )  # fmt: skip
            chosen = r["search_choice"] or (r["search_verdict"] and "none") or r["family"]
            if r.get("served_baseline"):
                chosen = f"none: serves {r['served_baseline']}"
            elif r["family"] == "popularity" and r["search_choice"] not in (None, "popularity"):
                served = "repeat" if r["repeat_weight"] else "popularity"  # after the gate
                chosen = f"{r['search_choice']}, not promoted: serves {served}"
            promoted = "yes" if r["promoted"] else "no"
            if r["promoted"] and r["family"] == "popularity":
                promoted = "yes, as the baseline"
            allowed = ", ".join(r["repeatable_events"]) or "none"
            if r["repeat_weight"]:
                allowed += f" (blend {r['repeat_weight']:g})"
            lines.append(
                f"| {name} | {r['rows_in']:,} | {r['clean']:,} / {r['quarantined']:,} /"
                f" {r['rejected']:,} | {'passed' if r['gate_passed'] else 'FAILED'} | {search}"
                f" | {chosen} | {allowed} | {_ndcg(r['ndcg'])} / {_ndcg(r['popularity_ndcg'])}"
                f" / {_ndcg(r['repeat_ndcg'])} | {_gain(r['vs_popularity'])} |"
                f" {_gain(r['vs_repeat'])} | {promoted} |"
                f" {r['seconds']:.0f} s | {r['peak_gb']:.1f} GB |"
            )
        lines.append("")
    lines += repeat_table(results.get("real", {}))
    contrasts = {n: r["policy_contrast"] for n, r in results.get("real", {}).items()
                 if r.get("policy_contrast")}  # fmt: skip
    if contrasts:
        lines += [
            "**The repeat policy, everything else equal** (`recomart train`, [train] as written,"
            " no search)",
            "",
            "| set | repeatable_events | users scored | nDCG@10 model / popularity / repeat |"
            " gain vs popularity [95 % CI] | gain vs repeat [95 % CI] |",
            "|---|---|---|---|---|---|",
        ]
        for name, contrast in contrasts.items():
            for r in contrast.values():
                lines.append(
                    f"| {name} | {', '.join(r['repeatable_events']) or 'none'} |"
                    f" {r['n_eval_users']} ({r['holdout']}) | {_ndcg(r['ndcg'])} /"
                    f" {_ndcg(r['popularity_ndcg'])} / {_ndcg(r['repeat_ndcg'])} |"
                    f" {_gain(r['vs_popularity'])} | {_gain(r['vs_repeat'])} |"
                )
        lines.append("")
    for name, r in results.get("not_runnable", {}).items():
        lines.append(f"- **{name}**: not run: {r['why']}.")
    return "\n".join(lines).rstrip() + "\n"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def repeat_table(real: dict) -> list[str]:
    """The data's repeat behaviour per real set, as dbt measured it (reports/transform.json)."""
    rows = [(name, r["repeats"]) for name, r in real.items() if r.get("repeats")]
    if not rows:
        return []
    lines = [
        "**The data's repeat behaviour** (dbt's `is_repeat`: an event on an item the user had a"
        " clean interaction with before)",
        "",
        "| set | users' last events that repeat | repeats among views / carts / purchases |"
        " purchases after a view of the item |",
        "|---|---|---|---|",
    ]
    for name, repeats in rows:
        by_type = repeats.get("by_event_type", {})
        shares = " / ".join(
            _share(by_type[event]["share"]) if event in by_type else "-"
            for event in ("view", "add_to_cart", "purchase")
        )
        lines.append(
            f"| {name} | {_share(repeats.get('last_event_repeat_share'))}"
            f" ({repeats.get('users', 0):,} users) | {shares} |"
            f" {_share(repeats.get('purchase_after_view_share'))} |"
        )
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="the shared data folder")
    parser.add_argument("--movielens", type=Path, default=None,
                        help="folder of u.data and items.tsv for the renderings"
                        " (default: <data>/movielens-100k)")  # fmt: skip
    parser.add_argument("--no-rendered", action="store_true", help="real files only")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT / "data" / "bench" / "own-data")
    parser.add_argument("--only", default="",
                        help="comma-separated sets to run again; the report keeps the others'"
                        " figures (with their own measured_at)")  # fmt: skip
    parser.add_argument(
        "--render", action="store_true", help="only write the markdown again from the JSON report"
    )
    args = parser.parse_args()
    reports = PROJECT_ROOT / "reports"
    path = reports / f"{REPORT}.json"
    if args.render:
        saved = json.loads(path.read_text())
        (reports / f"{REPORT}.md").write_text(render(saved))
        print(render(saved))
        return
    movielens = args.movielens or args.data / "movielens-100k"
    only = {name.strip() for name in args.only.split(",") if name.strip()} or None
    results = bench(args.data, movielens, args.root, not args.no_rendered, only)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    for group in results.values():
        for figures_of_set in group.values():
            figures_of_set["measured_at"] = stamp
    reports.mkdir(exist_ok=True)
    if only and path.exists():  # keep the other sets' figures
        previous = json.loads(path.read_text())
        for group, sets in results.items():
            results[group] = {**previous.get(group, {}), **sets}
    path.write_text(
        json.dumps({"measured_at": stamp, "data": str(args.data), **results}, indent=2) + "\n"
    )
    (reports / f"{REPORT}.md").write_text(render(results))
    print(render(results))


if __name__ == "__main__":
    main()
