"""MovieLens benchmark on the protocol of Microsoft Recommenders' public benchmark, for every
model family of models_ml.families.

Protocol: every rating is an interaction of weight 1 (the rating value is not used, as in the
published BPR and BiVAE rows); a random split stratified per item, 75% train / 25% test, seed 42
(python_stratified_split(filter_by="item") in their library: within each item the rows are
shuffled and the first 75% train); top 10 with the user's training items excluded; every test
interaction relevant; NDCG, precision, recall and MAP at 10 averaged over the users with test
items. The same recommender and metric code as the pipeline.

Selection on validation only (models_ml.selection): FOLD_SEEDS folds, each the same stratified
split of the training part with its own seed; each family's SPACES searched; the best mean
validation NDCG@10 over the folds picks each family's parameters and the selected family. Then
each family's choice is fitted on the whole training part (the fit time is the median of
`repeats` fits) and scored on the test part, with catalog coverage, novelty and popularity bias
at 10 beside accuracy. The test part is looked at only then. Seeds and threads are fixed (BLAS
on one thread, BPR and item-kNN on one), so two runs print the same numbers.

Not a test: `make bench-movielens` writes reports/bench_movielens.md and .json, and for
MovieLens 100K (`u.data`) the quoted copy docs/bench_movielens.json and the README's table.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models_ml import families
from models_ml.baselines import PopularityRecommender
from models_ml.evaluate import evaluate
from models_ml.recommender import Recommender
from models_ml.selection import Fold, select, validation_ndcg
from recomart_core.schema import ITEM, RATING, TIME, USER

DEFAULT_PATH = "../shared/data/movielens-100k/u.data"
QUOTED = "docs/bench_movielens.json"  # the report the README's table is rendered from
README_START = "<!-- bench_movielens:start (make bench-movielens writes this table) -->"
README_END = "<!-- bench_movielens:end -->"
K = 10
SEED = 42
RATIO = 0.75
FOLD_SEEDS = (43, 44, 45)
N_TRIALS = 64  # per family: every point of these grids
METRICS = ("ndcg_at_10", "precision_at_10", "recall_at_10", "map_at_10")
BEYOND = ("catalog_coverage_at_10", "novelty_at_10", "popularity_bias_at_10")
# Microsoft Recommenders, MovieLens 100K, their published rows (MAP, nDCG@10, P@10, R@10).
PUBLISHED = {
    "SAR": (0.110591, 0.382461, 0.330753, 0.176385),
    "BPR (Cornac)": (0.132478, 0.441997, 0.388229, 0.212522),
    "LightGCN": (0.088526, 0.419846, 0.379626, 0.144336),
    "BiVAE (Cornac)": (0.146126, 0.475077, 0.411771, 0.219145),
}
BASE = {"seed": SEED, "few_interactions": 0, "recency_half_life_days": 0.0}
SPACES = {  # each family's good region on this protocol, as a grid
    "als": {
        "n_factors": [64, 128],
        "regularization": [25.0, 100.0],
        "alpha": [1.0, 20.0],
        "weighting": ["linear", "bm25"],
    },
    "ease": {
        "ease_l2": [400.0, 800.0],
        "ease_dropout": [0.0, 0.3, 0.6],
        "ease_zero_diagonal": [True, False],
    },
    "bpr": {
        "bpr_factors": [64],
        "bpr_learning_rate": [0.005, 0.01],
        "bpr_regularization": [0.01],
        "bpr_iterations": [100],
    },
    "itemknn": {"knn_similarity": ["cosine", "bm25"], "knn_neighbours": [100, 400]},
    "hybrid": {"hybrid_weight": [0.2, 0.35, 0.5]},
}


def read_ratings(path: str | Path) -> pd.DataFrame:
    """Any MovieLens ratings file: u.data (tab, no header), ratings.dat (::), ratings.csv
    (userId,movieId,rating,timestamp; half stars), as user_id, item_id, rating, event_at."""
    path = Path(path)
    names = [USER, ITEM, RATING, TIME]
    with path.open() as fh:
        first = fh.readline()
    if "::" in first:
        frame = pd.read_csv(path, sep="::", names=names, engine="python")
    elif first.lower().startswith(("userid", "user_id")):
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


def _model(params: dict[str, Any]) -> Recommender:
    return families.from_flat(**{**BASE, **params})


def _scores(model, train: pd.DataFrame, test: pd.DataFrame, n_items: int) -> dict[str, float]:
    scores = evaluate(model, train, test, K, n_catalog_items=n_items)
    return {name: scores[name] for name in (*METRICS, *BEYOND, "n_users")}


def run_benchmark(
    path: str | Path,
    reports: Path,
    repeats: int = 3,
    spaces: dict[str, dict[str, list]] | None = None,
) -> dict[str, Any]:
    """Select on validation folds of train, fit every family's choice on train, score on test;
    write reports/bench_movielens.json and .md; return the result."""
    started = time.perf_counter()
    spaces = SPACES if spaces is None else spaces
    ratings = read_ratings(path).assign(**{RATING: np.nan})  # every rating an interaction
    train, test = stratified_split(ratings)
    n_items = int(ratings[ITEM].nunique())
    folds = [Fold(*stratified_split(train, seed=seed)) for seed in FOLD_SEEDS]
    chosen = select(folds, spaces, validation_ndcg(_model, K), N_TRIALS, SEED)
    models: dict[str, dict[str, Any]] = {}
    for family, trial in chosen["best_by_family"].items():
        fit_times = []
        for _ in range(repeats):
            begun = time.perf_counter()
            model = _model(trial["params"]).fit(train)
            fit_times.append(time.perf_counter() - begun)
        models[family] = {
            "params": trial["params"],
            "validation_ndcg_at_10": trial["mean"],
            "validation_ndcg_at_10_std": trial["std"],
            **_scores(model, train, test, n_items),
            "fit_seconds_median": statistics.median(fit_times),
        }
    popularity = _scores(PopularityRecommender().fit(train), train, test, n_items)
    result = {
        "data": Path(path).name,
        "protocol": "stratified per item 75/25, seed 42, top 10 excluding train items",
        "n_ratings": len(ratings),
        "n_train": len(train),
        "n_test": len(test),
        "selection": {
            "folds": len(folds),
            "fold_seeds": list(FOLD_SEEDS),
            "spaces": spaces,
            "trials": chosen["trials"],
        },
        "selected": chosen["best"]["family"],
        "models": models,
        "popularity": popularity,
        "published": {
            name: dict(zip(("map_at_10", *METRICS[:3]), row, strict=True))
            for name, row in PUBLISHED.items()
        },
        "seconds": time.perf_counter() - started,
    }
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "bench_movielens.json").write_text(json.dumps(result, indent=2) + "\n")
    (reports / "bench_movielens.md").write_text(markdown(result))
    return result


def table(result: dict[str, Any]) -> str:
    """The comparison table: their published rows, then ours (the selected family first).
    MAP@10 stays in the JSON only: their MAP divides by all of a user's relevant items, ours
    (models_ml.metrics) by min(relevant, 10), so the two do not compare."""
    lines = [
        "| model | nDCG@10 | P@10 | R@10 | coverage@10 | novelty@10 | popularity bias@10 "
        "| fit (s) | validation nDCG@10 | source |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["published"].items():
        lines.append(
            f"| {name} | {row['ndcg_at_10']:.3f} | {row['precision_at_10']:.3f} | "
            f"{row['recall_at_10']:.3f} | | | | | | Microsoft Recommenders (published) |"
        )
    selected = result["selected"]
    order = sorted(result["models"], key=lambda f: (f != selected, families.learned().index(f)))
    rows = [(f, result["models"][f]) for f in order] + [("popularity", result["popularity"])]
    for family, row in rows:
        label = families.titles().get(family, family)
        if family == selected:
            label = f"**RecoMart {label}: selected**"
        elif family != "popularity":
            label = f"RecoMart {label}"
        fit = f"{row['fit_seconds_median']:.2f}" if "fit_seconds_median" in row else ""
        validation = (
            f"{row['validation_ndcg_at_10']:.4f} ± {row['validation_ndcg_at_10_std']:.4f}"
            if "validation_ndcg_at_10" in row
            else ""
        )
        lines.append(
            f"| {label} | {row['ndcg_at_10']:.3f} | {row['precision_at_10']:.3f} | "
            f"{row['recall_at_10']:.3f} | {row['catalog_coverage_at_10']:.3f} | "
            f"{row['novelty_at_10']:.2f} | {row['popularity_bias_at_10']:.3f} | {fit} | "
            f"{validation} | this run |"
        )
    return "\n".join(lines) + "\n"


def markdown(result: dict[str, Any]) -> str:
    """The report: what ran, how the model was chosen, the table."""
    selected = result["models"][result["selected"]]
    return (
        "# MovieLens 100K: Microsoft Recommenders' protocol\n\n"
        f"Data `{result['data']}`: {result['n_ratings']} ratings, {result['protocol']}; "
        f"{selected['n_users']} users scored. Each family's parameters and the selected family "
        f"were chosen on {result['selection']['folds']} validation folds of the training part "
        f"only ({len(result['selection']['trials'])} candidates); selected: "
        f"`{result['selected']}` with `{json.dumps(selected['params'])}`. Whole run, selection "
        f"included: {result['seconds']:.0f} s.\n\n" + table(result)
    )


def publish(result: dict[str, Any], home: Path) -> None:
    """Write the quoted copy of the report (QUOTED) and the README's table between its
    markers."""
    (home / QUOTED).parent.mkdir(parents=True, exist_ok=True)
    (home / QUOTED).write_text(json.dumps(result, indent=2) + "\n")
    readme = home / "README.md"
    text = readme.read_text()
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"README.md has no {README_START} ... {README_END} block")
    block = f"{README_START}\n{table(result)}{README_END}"
    readme.write_text(pattern.sub(lambda _: block, text))


def readme_table(readme: str) -> str:
    """The table between the README's markers."""
    start = readme.index(README_START) + len(README_START) + 1
    return readme[start : readme.index(README_END)]


def print_benchmark(cfg, path: str | None = None) -> dict[str, Any]:
    """Run the benchmark (path relative to the project home) and print the table; for
    MovieLens 100K (u.data) also publish it (the README's table and docs/)."""
    data = Path(path or DEFAULT_PATH)
    if not data.is_absolute():
        data = (cfg.paths.home / data).resolve()
    if not data.is_file():
        raise FileNotFoundError(f"MovieLens ratings file not found: {data}")
    result = run_benchmark(data, cfg.paths.reports)
    print(markdown(result))
    if data.name == "u.data":
        publish(result, cfg.paths.home)
        print(f"Published to README.md and {QUOTED}")
    return result
