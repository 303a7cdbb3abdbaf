"""`make bench-ease`: EASE's inverse, the way it is computed now against the way it was, side by
side in one run.

For MovieLens 100K (`u.data` of the shared data folder, when it is there) and the synthetic
100,000-rating, 10,000-item long tail of `make bench-own-data` (recomart/bench/own_data.py
`long_tail_ratings`), on the training part of a leave-last-3 holdout, per EASE setting:

- `inv`: np.linalg.inv of G + diag(L) in float64 (the code before the bounded search);
- `cholesky64` / `cholesky32`: models_ml.families.ease.ease_inverse (LAPACK potrf + potri in G's
  own buffer) forced to float64 / float32;
- `auto`: ease_inverse as the recommender runs it (float32 when the condition bound allows);

each timed `--repeats` times (median); then the weights W of each way are scored (NDCG@10 of the
test period, the same users) and the float32 lists compared with the float64 ones (share of
users whose top 10 is identical, and the mean overlap). Written to reports/bench_ease.json/.md.
The machine is noisy: read the ratios of one run, not absolute seconds across runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from models_ml import families
from models_ml.evaluate import evaluate_many
from models_ml.families import ease as ease_math
from models_ml.matrix import Weighting, confidence_matrix
from models_ml.split import leave_last_n
from recomart.bench.own_data import SHARED_DATA, long_tail_ratings
from recomart_core.env import PROJECT_ROOT
from recomart_core.schema import ITEM, RATING, TIME, USER

REPORT = "bench_ease"
SETTINGS = ((500.0, 0.0), (20.0, 0.0), (100.0, 0.3))  # (ease_l2, ease_dropout)
WAYS = ("inv", "cholesky64", "cholesky32", "auto")
K = 10


def movielens(folder: Path) -> pd.DataFrame | None:
    path = folder / "u.data"
    if not path.exists():
        return None
    frame = pd.read_csv(path, sep="\t", names=[USER, ITEM, RATING, "seconds"])
    frame[TIME] = pd.to_datetime(frame.pop("seconds"), unit="s")
    return frame


def synthetic() -> pd.DataFrame:
    ratings, _ = long_tail_ratings()
    frame = ratings.rename(columns={"userId": USER, "movieId": ITEM, "rating": RATING})
    frame[TIME] = pd.to_datetime(frame.pop("timestamp"), unit="s")
    return frame


def _inverse(x, l2: float, dropout: float, way: str) -> np.ndarray:
    """P = (G + diag(L))^-1 the given way."""
    if way == "inv":
        diagonal = np.asarray(x.multiply(x).sum(axis=0), dtype=np.float64).ravel()
        gram = np.asarray((x.T @ x).todense(), dtype=np.float64)
        gram[np.diag_indices_from(gram)] += ease_math.ease_penalty(diagonal, l2, dropout)
        return np.linalg.inv(gram)
    dtype = {"cholesky64": np.float64, "cholesky32": np.float32, "auto": None}[way]
    return ease_math.ease_inverse(x, l2, dropout, dtype)[0]


def _scores(train: pd.DataFrame, test: pd.DataFrame, l2: float, dropout: float, way: str):
    """(NDCG@10 per user, the top-10 lists) of the EASE recommender with P computed `way`."""
    dtype = {"inv": np.float64, "cholesky64": np.float64, "cholesky32": np.float32}.get(way)
    original = ease_math.ease_dtype
    if dtype is not None:  # the recommender's own inverse, in the precision of `way`
        ease_math.ease_dtype = lambda x, penalty: dtype
    try:
        model = families.from_flat(family="ease", ease_l2=l2, ease_dropout=dropout).fit(train)
    finally:
        ease_math.ease_dtype = original
    scores = evaluate_many({"m": model}, train, test, K)["m"]
    lists, _ = model.recommend_batch(scores.user_ids, K)
    return scores.per_user[f"ndcg_at_{K}"], lists


def bench_one(
    frame: pd.DataFrame, repeats: int, inv_repeats: int, settings=SETTINGS
) -> dict[str, Any]:
    split = leave_last_n(frame, 3)
    train, test = split.train, split.test
    x = confidence_matrix(train, weighting=Weighting(scheme="linear"))[0] / Weighting().alpha
    out: dict[str, Any] = {
        "users": int(train[USER].nunique()),
        "items": int(x.shape[1]),
        "settings": [],
    }
    for l2, dropout in settings:
        row: dict[str, Any] = {"ease_l2": l2, "ease_dropout": dropout, "seconds": {}}
        diagonal = np.asarray(x.multiply(x).sum(axis=0), dtype=np.float64).ravel()
        penalty = ease_math.ease_penalty(diagonal, l2, dropout)
        row["auto_dtype"] = np.dtype(ease_math.ease_dtype(x, penalty)).name
        for way in WAYS:
            times = []
            for _ in range(inv_repeats if way == "inv" else repeats):
                started = time.perf_counter()
                _inverse(x, l2, dropout, way)
                times.append(time.perf_counter() - started)
            row["seconds"][way] = statistics.median(times)
            print(f"  l2 {l2:g} dropout {dropout:g} {way}: {row['seconds'][way]:.2f} s", flush=True)
        ndcg64, lists64 = _scores(train, test, l2, dropout, "cholesky64")
        ndcg32, lists32 = _scores(train, test, l2, dropout, "cholesky32")
        overlap = [len(np.intersect1d(a, b)) / K for a, b in zip(lists64, lists32, strict=True)]
        row.update(
            ndcg64=float(ndcg64.mean()),
            ndcg32=float(ndcg32.mean()),
            identical_top10=float(np.mean((lists64 == lists32).all(axis=1))),
            mean_overlap=float(np.mean(overlap)),
            speedup_vs_inv=row["seconds"]["inv"] / row["seconds"]["auto"],
        )
        out["settings"].append(row)
    return out


def render(results: dict[str, Any]) -> str:
    lines = [
        "| data | l2, dropout | inv (float64) | Cholesky float64 | Cholesky float32 | as run"
        " (dtype) | inv / as run | NDCG@10 float64 / float32 | identical top 10 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, data in results.items():
        for r in data["settings"]:
            s = r["seconds"]
            lines.append(
                f"| {name} ({data['items']:,} items) | {r['ease_l2']:g}, {r['ease_dropout']:g} |"
                f" {s['inv']:.2f} s | {s['cholesky64']:.2f} s | {s['cholesky32']:.2f} s |"
                f" {s['auto']:.2f} s ({r['auto_dtype']}) | {r['speedup_vs_inv']:.1f}x |"
                f" {r['ndcg64']:.4f} / {r['ndcg32']:.4f} | {100 * r['identical_top10']:.1f} % |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--repeats", type=int, default=3, help="timings per way (median)")
    parser.add_argument("--inv-repeats", type=int, default=1, help="timings of np.linalg.inv")
    args = parser.parse_args()
    # the 10,000-item set at the search's default l2 only: inv takes minutes there
    sets = {"synthetic long tail": (synthetic, SETTINGS[:1])}
    frame = movielens(args.data / "movielens-100k")
    if frame is not None:
        sets = {"MovieLens 100K": (lambda: frame, SETTINGS), **sets}
    results = {}
    with threadpool_limits(1, "blas"):  # as training runs it
        for name, (load, settings) in sets.items():
            print(name, flush=True)
            results[name] = bench_one(load(), args.repeats, args.inv_repeats, settings)
    reports = PROJECT_ROOT / "reports"
    reports.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    (reports / f"{REPORT}.json").write_text(
        json.dumps({"measured_at": stamp, "results": results}, indent=2) + "\n"
    )
    (reports / f"{REPORT}.md").write_text(render(results))
    print(render(results))


if __name__ == "__main__":
    main()
