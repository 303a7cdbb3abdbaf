"""`make bench-own-data`: every examples/ configuration, unchanged, on real ratings in its layout.

MovieLens 100K (`u.data` and `items.tsv` of a MovieLens folder; real people's ratings of real
movies) is written out in the four layouts of examples/: `u.data` as it is; `ratings.csv` with
half stars (30 % of the ratings above one star lose half a star) and `movies.csv` with
pipe-separated genres; a UCI Online Retail export (SKUs, `17850.0` customer ids, month-first UK
local times, a quarter of guest lines, 2 % cancelled lines); a RetailRocket clickstream
(millisecond times, views / addtocart / transaction from the stars, plus a view before half of
them). Then `recomart demo` runs once per example in its own home under
data/bench/own-data/<name>/ (ingest, dbt, gate, the model search, training and the champion
gate) and the figures each run reports are collected into reports/bench_own_data.json and .md.

The retail and clickstream files carry movie ratings in a shop's layout: they test that the
layout is read and that the model learns real people's tastes through it, not retail behaviour.
"""

from __future__ import annotations

import argparse
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from recomart.bench.demo import _run
from recomart.core.env import PROJECT_ROOT

EXAMPLES = ("movielens-100k", "movielens-latest", "online-retail", "retailrocket")
GUEST_SHARE, CANCEL_SHARE, HALF_STAR_SHARE = 0.25, 0.02, 0.3
REPORT = "bench_own_data"


def read_movielens(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """u.data (user, item, rating, seconds) and items.tsv (item_id, title, release_year, genres)."""
    ratings = pd.read_csv(folder / "u.data", sep="\t", header=None, names=["u", "i", "r", "t"])
    items = pd.read_csv(folder / "items.tsv", sep="\t", dtype=str)
    return ratings, items


def write_layouts(folder: Path, out: Path, seed: int = 1) -> dict[str, int]:
    """The four layouts under out/<example>/; returns the rows written per example."""
    ratings, items = read_movielens(folder)
    rng = np.random.default_rng(seed)
    n = len(ratings)
    for name in EXAMPLES:
        (out / name).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(folder / "u.data", out / "movielens-100k" / "u.data")

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
    return {"movielens-100k": n, "movielens-latest": n, "online-retail": n,
            "retailrocket": n + len(viewed)}  # fmt: skip


def _figures(home: Path, name: str) -> dict:
    """What one example's run reports: rows per place, the gate, the model and its gate."""
    reports = home / "reports" / name
    metrics = json.loads((reports / "train_metrics.json").read_text())
    quality = json.loads((reports / "data_quality_report.json").read_text())["runs"][-1]
    tuning = json.loads((reports / "tuning.json").read_text())
    warehouse = home / "data" / name / "warehouse" / "recomart.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows_in, clean, quarantined, rejected = con.execute(
            "select (select sum(rows) from raw_interactions.source_files),"
            " (select count(*) from marts.interactions),"
            " (select count(*) from raw_interactions.interactions_quarantine),"
            " (select count(*) from marts.rejected_interactions)"
        ).fetchone()
    k = metrics["k"]
    return {
        "rows_in": int(rows_in),
        "clean": clean,
        "quarantined": quarantined,
        "rejected": rejected,
        "gate_passed": quality["gate_passed"],
        "quality_score": quality.get("overall_score"),
        "family": metrics["family"],
        "searched_users": tuning["n_search_users"],
        "holdout": metrics["evaluation"]["strategy"],
        "n_eval_users": metrics["n_eval_users"],
        "ndcg": metrics["model"][f"ndcg_at_{k}"],
        "popularity_ndcg": metrics["popularity"][f"ndcg_at_{k}"],
        "promoted": metrics["promotion"]["promote"],
        "reason": metrics["promotion"]["reason"],
    }


def bench(movielens: Path, root: Path) -> dict:
    files = root / "files"
    shutil.rmtree(files, ignore_errors=True)
    written = write_layouts(movielens, files)  # once; each home gets its own layout's folder
    results = {}
    for name in EXAMPLES:
        home = root / name
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(files / name, home / "data" / name)
        shutil.copyfile(PROJECT_ROOT / "examples" / name / "recomart.toml", home / "recomart.toml")
        seconds, peak = _run(["demo"], home)
        results[name] = {
            "rows_written": written[name],
            "seconds": round(seconds, 1),
            "peak_gb": round(peak, 2),
            **_figures(home, name),
        }
    return results


def render(results: dict) -> str:
    lines = [
        "| example | rows in | clean / quarantined / rejected | gate | chosen | users scored"
        " | nDCG@10 model / popularity | promoted | run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['rows_in']:,} | {r['clean']:,} / {r['quarantined']:,} /"
            f" {r['rejected']:,} | {'passed' if r['gate_passed'] else 'FAILED'} | {r['family']}"
            f" | {r['n_eval_users']} ({r['holdout']}) | {r['ndcg']:.4f} / "
            f"{r['popularity_ndcg']:.4f} | {'yes' if r['promoted'] else 'no'} |"
            f" {r['seconds']:.0f} s |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movielens", type=Path, required=True, help="folder of u.data, items.tsv")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT / "data" / "bench" / "own-data")
    args = parser.parse_args()
    results = bench(args.movielens, args.root)
    reports = PROJECT_ROOT / "reports"
    reports.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    (reports / f"{REPORT}.json").write_text(
        json.dumps(
            {"measured_at": stamp, "source": str(args.movielens), "examples": results}, indent=2
        )
        + "\n"
    )
    (reports / f"{REPORT}.md").write_text(render(results))
    print(render(results))


if __name__ == "__main__":
    main()
