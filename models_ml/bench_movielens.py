"""MovieLens 100K benchmark on the protocol of Microsoft Recommenders' public benchmark.

Protocol: every rating is an interaction (no threshold); a random split stratified per item,
75% train / 25% test, seed 42 (python_stratified_split(filter_by="item") in their library: within
each item the rows are shuffled and the first 75% train); top 10 with the user's training items
excluded; every test interaction relevant; NDCG, precision and recall at 10 averaged over the
users with test items. The same recommender and metric code as the pipeline. Hyperparameters
are chosen on a validation split carved from the training part only (the same stratified split
of the training rows, seed 43). Not a test: `make bench-movielens` writes its table to
reports/bench_movielens.md and .json.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models_ml.evaluate import evaluate
from models_ml.recommender import MatrixFactorizationRecommender
from models_ml.tune import grid
from recomart.core.schema import ITEM, RATING, TIME, USER

DEFAULT_PATH = "../shared/data/movielens-100k/u.data"
K = 10
SEED = 42
RATIO = 0.75
# Microsoft Recommenders, MovieLens 100K, their published rows (nDCG@10, P@10, R@10).
PUBLISHED = {
    "SAR": (0.382, 0.331, 0.176),
    "BPR (Cornac)": (0.442, 0.388, 0.213),
    "BiVAE (Cornac)": (0.475, 0.412, 0.219),
}
SPACE = {
    "n_factors": [8, 16, 32, 64],
    "regularization": [0.1, 1.0],
    "alpha": [2.0, 5.0, 10.0],
    "weighting": ["linear", "bm25"],
    "iterations": [15],
}


def read_ratings(path: str | Path) -> pd.DataFrame:
    """Any MovieLens ratings file: u.data (tab, no header), ratings.dat (::), ratings.csv."""
    path = Path(path)
    names = [USER, ITEM, RATING, TIME]
    with path.open() as fh:
        first = fh.readline()
    if "::" in first:
        frame = pd.read_csv(path, sep="::", names=names, engine="python")
    elif first.lower().startswith("userid") or first.lower().startswith("user_id"):
        frame = pd.read_csv(path).iloc[:, :4]
        frame.columns = names
    else:
        frame = pd.read_csv(path, sep="\t" if "\t" in first else ",", names=names)
    frame[TIME] = pd.to_datetime(frame[TIME], unit="s")
    return frame.astype({USER: np.int64, ITEM: np.int64, RATING: np.float64})


def stratified_split(
    frame: pd.DataFrame, ratio: float = RATIO, seed: int = SEED, by: str = ITEM
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per group of `by`: shuffle its rows with the seed, the first ratio of them train."""
    rng = np.random.default_rng(seed)
    shuffled = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    rank = shuffled.groupby(by).cumcount() + 1
    count = shuffled.groupby(by)[by].transform("size")
    in_train = (rank / count <= ratio).to_numpy()
    return shuffled[in_train].reset_index(drop=True), shuffled[~in_train].reset_index(drop=True)


def _model(params: dict[str, Any]) -> MatrixFactorizationRecommender:
    return MatrixFactorizationRecommender(seed=SEED, few_interactions=0, **params)


def run_benchmark(path: str | Path, reports: Path, repeats: int = 3) -> dict[str, Any]:
    """Tune on train-only validation, fit on train, score on test; write the table; return it."""
    ratings = read_ratings(path)
    train, test = stratified_split(ratings)
    fit_part, validation = stratified_split(train, seed=SEED + 1)
    trials = []
    for params in grid(SPACE):
        model = _model(params).fit(fit_part.drop(columns=[TIME]))
        score = evaluate(model, fit_part, validation, K)[f"ndcg_at_{K}"]
        trials.append({"params": params, f"validation_ndcg_at_{K}": score})
    best = max(trials, key=lambda t: t[f"validation_ndcg_at_{K}"])["params"]

    fit_times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model = _model(best).fit(train.drop(columns=[TIME]))
        fit_times.append(time.perf_counter() - started)
    scores = evaluate(model, train, test, K)
    result = {
        "data": str(path),
        "protocol": "stratified per item 75/25, seed 42, top 10 excluding train items",
        "n_ratings": len(ratings),
        "n_train": len(train),
        "n_test": len(test),
        "best_params": best,
        "trials": trials,
        "als": {
            "ndcg_at_10": scores["ndcg_at_10"],
            "precision_at_10": scores["precision_at_10"],
            "recall_at_10": scores["recall_at_10"],
            "map_at_10": scores["map_at_10"],
            "n_users": scores["n_users"],
            "fit_seconds_median": statistics.median(fit_times),
        },
        "published": {
            name: dict(zip(("ndcg_at_10", "precision_at_10", "recall_at_10"), row, strict=True))
            for name, row in PUBLISHED.items()
        },
    }
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "bench_movielens.json").write_text(json.dumps(result, indent=2) + "\n")
    (reports / "bench_movielens.md").write_text(markdown(result))
    return result


def markdown(result: dict[str, Any]) -> str:
    """The comparison table: their published rows beside ours, with our fit time."""
    als = result["als"]
    lines = [
        "# MovieLens 100K: Microsoft Recommenders' protocol",
        "",
        f"Data `{result['data']}`: {result['n_ratings']} ratings, {result['protocol']}; "
        f"{als['n_users']} users scored. Best parameters (validation inside train): "
        f"`{json.dumps(result['best_params'])}`.",
        "",
        "| model | nDCG@10 | P@10 | R@10 | fit (s) | source |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in result["published"].items():
        lines.append(
            f"| {name} | {row['ndcg_at_10']:.3f} | {row['precision_at_10']:.3f} | "
            f"{row['recall_at_10']:.3f} | | Microsoft Recommenders (published) |"
        )
    lines.append(
        f"| RecoMart ALS (implicit) | {als['ndcg_at_10']:.3f} | {als['precision_at_10']:.3f} | "
        f"{als['recall_at_10']:.3f} | {als['fit_seconds_median']:.2f} | this run (median fit) |"
    )
    return "\n".join(lines) + "\n"


def print_benchmark(cfg, path: str | None = None) -> dict[str, Any]:
    """Run the benchmark (path relative to the project home) and print the table."""
    data = Path(path or DEFAULT_PATH)
    if not data.is_absolute():
        data = (cfg.paths.home / data).resolve()
    if not data.is_file():
        raise FileNotFoundError(f"MovieLens ratings file not found: {data}")
    result = run_benchmark(data, cfg.paths.reports)
    print(markdown(result))
    return result
