"""`make tune`: choose the model family and its parameters on validation folds inside the
training period, asking the question the champion gate asks, within a time budget.

The holdout of [train.evaluation] (the one training uses, models_ml.split.holdout) is set aside
first and never looked at. The folds are cut from its training part by the same rule the test
split resolved to (fold_settings: when "auto" chose leave-last-3, the folds are leave-last-3;
when it chose last_days, they are last_days with [train.tune] validation_days, if set, in place
of holdout_days): fold 1 splits the training part, fold 2 fold 1's fit part, and so on for
[train.tune] folds (rolling origins; a fold with no fit or validation rows ends the list).

Users. With more training users than [train.tune] max_users, the search runs on the rows of a
seeded sample of max_users users, unless every planned candidate is estimated to fit the budget
on all of them. The space's values are those of [train] for the full training data: a penalty
that grows with the users (families.user_scaled(): EASE's l2, as G = X'X sums over users) is
divided by n_train_users / n_search_users while fitting on the sample, so the reported values
are the ones to train with. The report's `rescaling` says which.

models_ml.selection runs the search (its docstring has the rules): [train]'s own values first
(each family's [train] point: the [train] family first of all, then the others cheapest
first), then the rest of each family's sample; EASE's two diagonal variants from one inverse
per fold (families.free_settings(), shared_inverses); the budget [train.tune] budget_s, with an
a priori cost per candidate (families.fit_seconds of the fold's shape) calibrated by the search's
own fits; the simplest candidate within one standard error of the best mean (per-user paired
differences); and no choice when it does not beat every baseline on validation (baselines():
popularity, and the repeat baseline when [train] repeatable_events allows repeats). With
repeats allowed, the chosen candidate is then scored with each [train.tune] repeat_weights
value (repeat_blend: one fit per fold) and the baselines are judged against the blend. Each
fold and each skipped candidate is logged (family, parameters, fold, validation NDCG, elapsed,
ETA), with a progress bar on a terminal (Progress).

When the search refuses (a candidate was scored, but the best does not beat every baseline on
validation, with or without the repeat blend), the shop is served the best baseline instead:
best_params is the popularity family (models_ml.families) with repeat_weight 1 when the repeat
baseline has the best validation mean, else 0 (plain popularity); the report's served_baseline
names it and the verdict says so ("nothing beats popularity on validation: serving
popularity"). `recomart demo` trains it like any choice, and the gate (models_ml.registry)
promotes it only while there is no champion (or the champion is a baseline too). When no
candidate was scored at all there is no choice and [train] is trained as written.

The budget covers the whole search: reading the marts, cutting the folds, the baselines, the
candidates and the repeat blend (not the MLflow logging after it). With repeats allowed the
candidates end by (1 - BLEND_SHARE) of it, so that the repeat blend stage, where data with
strong repeat behaviour is decided, always has its share. It is kept to within one
fold's overrun: no fold starts once its estimate exceeds what is left, so only a fold estimated
too low can end past the budget.

The log of every trial, what was skipped and why, and the choice go to <paths.reports>/tuning.json
and to one MLflow run in the experiment "recomart-tuning"; copy the `toml` lines of the report
into recomart.toml to use them ([train] family and the shared keys, [train.<family>] the
family's own; a search point names those "<family>.<key>"), or run `recomart tune --apply`.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from feature_store import FeatureStore
from models_ml import baselines as baseline_models
from models_ml import families
from models_ml.baselines import PopularityRecommender
from models_ml.data import read_training_data
from models_ml.evaluate import evaluate_many
from models_ml.families import Shape, dense, fit_seconds, shared_inverses
from models_ml.recommender import Recommender
from models_ml.selection import (
    FIRST_POINTS_FIRST,
    ONE_SE,
    Fold,
    Search,
    decide,
    plan,
    refusal,
    select,
    validation_ndcg,
)
from models_ml.split import LAST_DAYS, Split, holdout
from models_ml.tracking import start_run, use_experiment
from recomart_core import config
from recomart_core.schema import ITEM, USER
from recomart_core.settings import Evaluation, Train

log = logging.getLogger("tuning")

BLEND_SHARE = 0.2  # of [train.tune] budget_s kept for the repeat blend stage (repeats allowed)
EXPERIMENT = "recomart-tuning"
REPORT_FILE = "tuning.json"


def with_point(train: Train, point: dict[str, Any]) -> Train:
    """The [train] section with a candidate's values, validated like the file's (a point names
    a family's own settings "<family>.<key>": models_ml.families.with_point)."""
    return families.with_point(train, point)


def qualified_spaces(space: dict[str, dict[str, list]]) -> dict[str, dict[str, list]]:
    """[train.tune.space.<family>] with the family's own keys named "<family>.<key>" (the
    search points' names, families.qualified), shared [train] keys as they are."""
    return {
        family: {families.qualified(family, key): values for key, values in keys.items()}
        for family, keys in space.items()
    }


def candidate_settings(train: Train, family: str, point: dict[str, Any]):
    """The family's settings at a search point (what its cost is estimated from)."""
    return families.settings_of(with_point(train, {**point, "family": family}), family)


def toml_lines(params: dict[str, Any] | None) -> str:
    """A point as the lines to copy into recomart.toml: [train] keys, then each family's
    table ([train.<family>])."""
    params = params or {}
    lines = [f"{key} = {json.dumps(v)}" for key, v in params.items() if "." not in key]
    tables: dict[str, list[str]] = {}
    for key, value in params.items():
        if "." in key:
            table, name = key.split(".", 1)
            tables.setdefault(table, []).append(f"{name} = {json.dumps(value)}")
    for table, entries in tables.items():
        lines += [f"[train.{table}]", *entries]
    return "\n".join(lines)


def fold_settings(test: Split, evaluation: Evaluation, validation_days: float | None) -> Evaluation:
    """The holdout rule of the validation folds: the strategy the test split resolved to (what
    "auto" chose, or the one configured) with its parameter; for last_days, validation_days (when
    set) in place of holdout_days. Never "auto" again: the training part may resolve otherwise."""
    params = dict(test.params)
    if test.strategy == LAST_DAYS and validation_days:
        params["holdout_days"] = validation_days
    return Evaluation.model_validate(
        {**evaluation.model_dump(), "holdout": test.strategy, **params}
    )


def rolling_folds(rows, settings: Evaluation, n_folds: int, min_rating: float) -> list[Split]:
    """Up to n_folds splits: the first of `rows`, each next one of the previous fit part."""
    splits: list[Split] = []
    part = rows
    for _ in range(n_folds):
        if part.empty:
            break
        split = holdout(part, settings, min_rating)
        if split.train.empty or split.test.empty:
            break
        splits.append(split)
        part = split.train
    return splits


def validation_folds(
    test: Split, rows: pd.DataFrame, evaluation: Evaluation, train: Train
) -> list[Split]:
    """The folds of the search: rolling splits of `rows` (the test split's training part, or a
    sample of its users) by fold_settings."""
    settings = fold_settings(test, evaluation, train.tune.validation_days)
    return rolling_folds(rows, settings, train.tune.folds, train.min_relevant_rating)


class TooSmallToTune(ValueError):
    """No validation fold fits in the training period."""


def user_sample(rows: pd.DataFrame, max_users: int | None, seed: int) -> pd.DataFrame:
    """The rows of a seeded sample of max_users users (all rows when there are fewer users)."""
    users = pd.unique(rows[USER])
    if max_users is None or len(users) <= max_users:
        return rows
    keep = np.random.default_rng(seed).choice(users, max_users, replace=False)
    return rows[np.isin(rows[USER].to_numpy(), keep)]


def fitting(
    spaces: dict[str, dict[str, list]], n_items: int, train: Train
) -> tuple[dict[str, dict[str, list]], dict[str, str]]:
    """The search spaces of the families that can fit a catalog of n_items, and why the others
    are left out (the dense families above their max_items; a baseline family, which is what a
    refused search serves, never a candidate)."""
    bounds = {family: families.max_items(train, family) for family in spaces}
    skipped = {
        family: f"{n_items} items, above its max_items = {bounds[family]} ([train.ease])"
        for family in spaces
        if family in dense() and bounds[family] is not None and n_items > bounds[family]
    }
    skipped.update(
        {
            family: "a baseline, not a candidate: what the search serves when it refuses"
            for family in spaces
            if family in families.baselines()
        }
    )
    return {f: space for f, space in spaces.items() if f not in skipped}, skipped


def baselines(train: Train) -> dict[str, Callable[[], Any]]:
    """What a chosen model must beat on validation, as factories of unfitted recommenders:
    popularity, and, when [train] repeatable_events allows repeats, the repeat baseline (the
    user's own recent and frequent items; models_ml.baselines.RepeatRecommender, when that
    module has it). Each follows the repeat policy."""
    repeatable = list(train.repeatable_events)
    if not repeatable:
        return {"popularity": PopularityRecommender}
    out: dict[str, Callable[[], Any]] = {
        "popularity": lambda: PopularityRecommender(repeatable=repeatable)
    }
    repeat = getattr(baseline_models, "RepeatRecommender", None)
    if repeat is not None:
        out["repeat"] = lambda: repeat(train.repeat_half_life_days, repeatable, train.event_weights)
    return out


def first_points(train: Train, spaces: dict[str, dict[str, list]]) -> dict[str, dict[str, Any]]:
    """Each family's [train] point (its space's keys at [train]'s values), the [train] family
    first: what the search tries before anything else (cheapest_first orders the others)."""
    values = families.point_values(train)
    order = [train.family, *(f for f in spaces if f != train.family)]
    return {f: {key: values[key] for key in spaces[f]} for f in order if f in spaces}


def cheapest_first(
    first: dict[str, dict[str, Any]], family: str, estimate: Callable[..., float]
) -> dict[str, dict[str, Any]]:
    """The first points in the order they are tried: the [train] family's first of all, then
    the others by their estimated seconds on fold 1, cheapest first (a small budget tries as
    many families as it can before anything is refined)."""
    cost = {f: estimate({**point, "family": f}, 0, False) for f, point in first.items()}
    order = sorted((f for f in first if f != family), key=lambda f: (cost[f], f))
    return {f: first[f] for f in ([family] if family in first else []) + order}


def shape_of(
    rows: pd.DataFrame, catalog_items: np.ndarray, n_scored: int, scored: np.ndarray | None = None
) -> Shape:
    """The Shape a candidate fitted on these rows has (the catalog's items included), scored on
    n_scored users: `scored` (sorted ids), or as many average users."""
    users = rows[USER].to_numpy(dtype=np.int64)
    items = rows[ITEM].to_numpy(dtype=np.int64)
    pairs = np.unique((users << 32) | items)
    owners, lengths = np.unique(pairs >> 32, return_counts=True)
    if scored is None:
        scored_nnz = int(len(pairs) * n_scored / max(len(owners), 1))
    else:
        scored_nnz = int(lengths[np.isin(owners, scored)].sum())
    warm = np.unique(items)
    n_items = len(np.union1d(warm, catalog_items))
    cooccurrences = int(lengths.astype(np.int64) @ lengths)
    return Shape(len(owners), n_items, len(pairs), cooccurrences, n_scored, scored_nnz,
                 n_items - len(warm))  # fmt: skip


def rescale(point: dict[str, Any], factor: float) -> dict[str, Any]:
    """A point's values for data `factor` times smaller in users (families.user_scaled()
    divided)."""
    if factor == 1.0:
        return point
    scaled = families.user_scaled()
    return {k: v / factor if k in scaled else v for k, v in point.items()}


class Progress:
    """What the search shows while it runs: a log line per fold and per skipped candidate, and
    a tqdm bar on stderr when it is a terminal (log lines go through tqdm.write meanwhile).
    The bar counts fits (candidate x fold) and shows the search's own ETA (from the estimates)."""

    BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n}/{total} fits [{elapsed}{postfix}]"

    def __init__(self, metric: str, bar: bool | None = None) -> None:
        self.metric = metric
        self.use_bar = sys.stderr.isatty() if bar is None else bar
        self.bar: tqdm | None = None
        self._stack = ExitStack()

    def __enter__(self) -> Progress:
        if self.use_bar:
            self._stack.enter_context(logging_redirect_tqdm())
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def __call__(self, event: dict[str, Any]) -> None:
        if event["event"] == "start":
            log.info("planned %d candidates on %d folds (%d fits)", event["candidates"],
                     event["n_folds"], event["total"])  # fmt: skip
            if self.use_bar:
                self.bar = self._stack.enter_context(
                    tqdm(
                        total=event["total"],
                        desc="model search",
                        file=sys.stderr,
                        leave=False,
                        bar_format=self.BAR_FORMAT,
                    )
                )
            return
        point = describe(event["params"])
        if event["event"] == "skip":
            log.info("skipped %s: %s", point, event["reason"])
        else:
            log.info(
                "%s fold %d/%d: %s %.4f in %.1f s (est. %s); %.0f s elapsed, ETA %s",
                point,
                event["fold"],
                event["n_folds"],
                self.metric,
                event["ndcg"],
                event["seconds"],
                _seconds(event["estimate_s"]),
                event["elapsed_s"],
                _seconds(event["eta_s"]),
            )
        if self.bar is not None:
            self.bar.total = event.get("total", self.bar.total)
            self.bar.n = event.get("done", self.bar.n)
            if event.get("eta_s") is not None:
                self.bar.set_postfix_str(f"ETA {event['eta_s']:.0f} s", refresh=False)
            self.bar.refresh()


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f} s"


def describe(params: dict[str, Any]) -> str:
    """'als factors=16 regularization=50.0 ...': a candidate in one line."""
    values = " ".join(f"{k}={v}" for k, v in params.items() if k != "family")
    return f"{params['family']} {values}".strip()


def run_tuning(cfg: config.Config, progress_bar: bool | None = None) -> dict[str, Any]:
    """Search, record and return the report (also <paths.reports>/tuning.json).

    Keys: metric, holdout / validation (fold 1) / folds (models_ml.split.Split.info),
    folds_strategy, holdout_cutoff, validation_cutoff, n_validation_users,
    n_validation_fit_rows, n_validation_rows, baselines ({name: validation mean}),
    popularity_baseline, skipped (families left out for their size), skipped_candidates
    ([{family, params, estimate_s, reason}]), budget_s, elapsed_s, calibration, rescaling,
    n_search_users, n_train_users, trials ([{trial, family, params, mean, std, per_fold, n_users,
    seconds, estimate_s}]), best_by_family, best (the chosen trial, None when refused or nothing
    was scored), best_mean, decision, refused (str or None), repeat_blend (None without
    repeats), served_baseline (when refused: {name, validation, params}, the baseline served
    instead; else None), best_params (to train: the chosen candidate, the served baseline's
    popularity family when refused, None when nothing was scored), toml, verdict (one sentence),
    summary (lines), run_id, report. progress_bar: None = when stderr is a terminal.
    """
    started = time.perf_counter()
    train = cfg.settings.train
    tune = train.tune
    k = train.k
    metric = f"ndcg_at_{k}"
    evaluation = train.evaluation
    min_rating = train.min_relevant_rating
    repeatable = list(train.repeatable_events)
    marts = read_training_data(FeatureStore(cfg))
    test_split = holdout(marts.interactions, evaluation, min_rating, repeatable)
    spaces, size_skipped = fitting(qualified_spaces(tune.space), len(marts.items), train)
    for family, reason in size_skipped.items():
        log.info("%s not searched: %s", family, reason)
    first = first_points(train, spaces)
    search = Search(
        order=FIRST_POINTS_FIRST,
        first=first,
        rule=ONE_SE,
        budget_s=tune.budget_s,
        free=families.free_settings(),
        started=started,
    )
    catalog_items = marts.catalog[ITEM].to_numpy(dtype=np.int64)
    n_train_users = int(test_split.train[USER].nunique())
    searched, rescaling = searched_rows(test_split.train, train, spaces, search, catalog_items)
    splits = validation_folds(test_split, searched, evaluation, train)
    if not splits:
        raise TooSmallToTune("the training part is too small to carve a validation split from")
    folds = [Fold(split.train, split.test) for split in splits]
    factor = rescaling["factor"]
    eval_args = {
        "max_users": evaluation.max_eval_users,
        "seed": train.seed,
        "repeatable": repeatable,
    }
    baseline_values, shapes = _baselines_and_shapes(folds, train, catalog_items, eval_args)
    rating_max = cfg.settings.ratings.max

    def make(point: dict[str, Any]) -> Recommender:
        """A candidate's recommender; on a sample of users, its penalties rescaled to it."""
        return families.build(with_point(train, rescale(point, factor)), rating_max)

    fit_and_score = validation_ndcg(make, k, min_rating, catalog=marts.catalog, **eval_args)
    blend_scores = weighted_ndcg(make, k, min_rating, catalog=marts.catalog, **eval_args)
    # with repeats allowed the baselines are judged after the repeat blend stage, not before
    search.baselines = None if repeatable else baseline_values
    search.estimate = _estimate(train, shapes, factor)
    search.first = cheapest_first(first, train.family, search.estimate)
    log.info(
        "searching %s on %d folds (%s), %d users, budget %g s",
        ", ".join(spaces),
        len(folds),
        splits[0].label,
        searched[USER].nunique(),
        tune.budget_s,
    )
    if repeatable:  # the family search leaves the repeat blend stage its share of the budget
        search.budget_s = tune.budget_s * (1 - BLEND_SHARE)
    with Progress(metric, progress_bar) as progress, shared_inverses():
        search.progress = progress
        chosen = select(folds, spaces, fit_and_score, tune.n_trials, train.seed, search)
    chosen.pop("values")  # per-user arrays: not for the report
    search.budget_s = tune.budget_s
    blend = None
    if repeatable:
        blend = repeat_blend(chosen, folds, blend_scores, train, baseline_values, search)
    best = chosen["best"]
    refused = chosen["refused"] or (blend or {}).get("refused")
    best_params = None
    if best is not None and not refused:
        best_params = dict(best["params"])
        if blend and blend.get("chosen_weight") is not None:
            best_params["repeat_weight"] = blend["chosen_weight"]
    served = served_baseline(_means(baseline_values)) if refused else None
    if served is not None:
        best_params = dict(served["params"])
    first_split = splits[0]
    result = {
        "metric": metric,
        "holdout_cutoff": test_split.info()["cutoff"],
        "validation_cutoff": first_split.info()["cutoff"],
        "holdout": test_split.info(),
        "validation": first_split.info(),
        "folds": [split.info() for split in splits],
        "folds_strategy": {
            "strategy": first_split.strategy,
            "params": dict(first_split.params),
            "reason": f"the test split's rule ({test_split.label}; {test_split.reason})",
        },
        "n_validation_users": len(baseline_values["popularity"][0]),
        "n_validation_fit_rows": len(first_split.train),
        "n_validation_rows": len(first_split.test),
        "baselines": _means(baseline_values),
        "popularity_baseline": _means(baseline_values)["popularity"],
        "skipped": size_skipped,
        "skipped_candidates": chosen["skipped"],
        "budget_s": tune.budget_s,
        "elapsed_s": time.perf_counter() - started,
        "calibration": chosen["calibration"],
        "rescaling": rescaling,
        "n_search_users": int(searched[USER].nunique()),
        "n_train_users": n_train_users,
        "trials": chosen["trials"],
        "best_by_family": chosen["best_by_family"],
        "best": best if best_params is not None and not refused else None,
        "best_mean": chosen["best_mean"],
        "decision": chosen["decision"],
        "refused": refused,
        "repeat_blend": blend,
        "served_baseline": served,
        "best_params": best_params,
        "toml": toml_lines(best_params),
    }
    result["verdict"] = _verdict(result)
    result["summary"] = summary(result)
    report = cfg.paths.reports / REPORT_FILE
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(result, indent=2) + "\n")
    result["run_id"] = _log_mlflow(cfg, result, test_split, first_split, len(folds))
    result["report"] = str(report)
    return result


def weighted_ndcg(
    make: Callable[[dict[str, Any]], Any],
    k: int,
    min_rating: float,
    repeatable: Sequence[str] = (),
    max_users: int | None = None,
    seed: int = 0,
    **fit_kwargs: Any,
) -> Callable[[dict[str, Any], Fold, list[float]], dict[float, np.ndarray]]:
    """The repeat blend's scorer: make(params) fitted once on fold.train, then scored on
    fold.validation with each repeat weight (with_repeat_weight: the same fitted arrays) on the
    same users; {weight: per-user NDCG@k}."""

    def score(params: dict[str, Any], fold: Fold, weights: list[float]) -> dict[float, Any]:
        model = make(params).fit(fold.train, **fit_kwargs)
        blends = {str(w): model.with_repeat_weight(w) for w in weights}
        scores = evaluate_many(
            blends,
            fold.train,
            fold.validation,
            k,
            min_rating,
            max_users=max_users,
            seed=seed,
            repeatable=repeatable,
        )
        return {w: scores[str(w)].per_user[f"ndcg_at_{k}"] for w in weights}

    return score


def _means(baseline_values: dict[str, list[np.ndarray]]) -> dict[str, float]:
    return {
        name: statistics.fmean(float(v.mean()) for v in per_fold)
        for name, per_fold in baseline_values.items()
    }


def searched_rows(
    rows: pd.DataFrame,
    train: Train,
    spaces: dict[str, dict[str, list]],
    search: Search,
    catalog_items: np.ndarray,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """All training rows when there are at most max_users users, or when every planned
    candidate is estimated to fit the budget on all of them; else a seeded sample of max_users
    users' rows. Returns them and the report's `rescaling`."""
    tune = train.tune
    n_users = int(rows[USER].nunique())
    info: dict[str, Any] = {"n_train_users": n_users, "settings": list(families.user_scaled())}
    if tune.max_users is None or n_users <= tune.max_users:
        return rows, {
            **info,
            "searched_on": "all users",
            "factor": 1.0,
            "reason": f"{n_users} users, within [train.tune] max_users",
        }
    n_scored = min(n_users, train.evaluation.max_eval_users)
    whole = shape_of(rows, catalog_items, n_scored)
    steps = plan(spaces, tune.n_trials, train.seed, search)
    estimate = tune.folds * sum(
        fit_seconds(family, whole, candidate_settings(train, family, point), shared=i > 0)
        for step in steps
        for i, (family, point) in enumerate(step)
    )
    if estimate <= tune.budget_s:
        reason = (
            f"every candidate on all {n_users} users is estimated at {estimate:.0f} s, within"
            f" the {tune.budget_s:g} s budget"
        )
        return rows, {
            **info,
            "searched_on": "all users",
            "factor": 1.0,
            "estimate_s": estimate,
            "reason": reason,
        }
    sample = user_sample(rows, tune.max_users, train.seed)
    factor = n_users / sample[USER].nunique()
    return sample, {
        **info,
        "searched_on": f"a sample of {tune.max_users} users",
        "factor": factor,
        "estimate_s": estimate,
        "reason": (
            f"every candidate on all {n_users} users is estimated at {estimate:.0f} s, above"
            f" the {tune.budget_s:g} s budget: searched on a seeded sample of"
            f" {tune.max_users} users; {', '.join(families.user_scaled())} divided by"
            f" {factor:.2f} while"
            " fitting there (the values reported are for all users)"
        ),
    }


def _baselines_and_shapes(
    folds: list[Fold], train: Train, catalog_items: np.ndarray, eval_args: dict[str, Any]
) -> tuple[dict[str, list[np.ndarray]], list[Shape]]:
    """Per fold: each baseline's per-user NDCG (the same users the candidates are scored on)
    and the Shape candidates are fitted on."""
    k, min_rating = train.k, train.min_relevant_rating
    values: dict[str, list[np.ndarray]] = {name: [] for name in baselines(train)}
    shapes = []
    for fold in folds:
        fitted = {name: make().fit(fold.train) for name, make in baselines(train).items()}
        scores = evaluate_many(fitted, fold.train, fold.validation, k, min_rating, **eval_args)
        for name, s in scores.items():
            values[name].append(s.per_user[f"ndcg_at_{k}"])
        users = next(iter(scores.values())).user_ids
        shapes.append(shape_of(fold.train, catalog_items, len(users), users))
    return values, shapes


def _estimate(train: Train, shapes: list[Shape], factor: float):
    """Search.estimate: families.fit_seconds of a candidate on a fold's shape."""

    def estimate(params: dict[str, Any], fold: int, shared: bool) -> float:
        family = params["family"]
        settings = candidate_settings(train, family, rescale(params, factor))
        return fit_seconds(family, shapes[fold], settings, shared)

    return estimate


def repeat_blend(
    chosen: dict[str, Any],
    folds: list[Fold],
    scores: Callable[[dict[str, Any], Fold, list[float]], dict[float, np.ndarray]],
    train: Train,
    baseline_values: dict[str, list[np.ndarray]],
    search: Search,
) -> dict[str, Any]:
    """The repeat blend stage (repeats allowed): the chosen candidate refitted once per fold and
    scored with each [train.tune] repeat_weights value ([train] repeat_weight, through
    Recommender.with_repeat_weight: no refit per weight). The weight is
    chosen by the search's rule (no blend is simplest), and the blend must beat every baseline.
    Returns {ran, reason, weights: [{repeat_weight, mean, per_fold}], chosen_weight, decision,
    refused, seconds}."""
    weights = list(train.tune.repeat_weights)
    out: dict[str, Any] = {"ran": False, "weights": [], "chosen_weight": None, "refused": None}
    best = chosen["best"]
    if best is None:
        out["reason"] = "no candidate was chosen"
        return out
    left = search.budget_s - (search.clock() - search.started)
    scale = chosen["calibration"].get(best["family"], 1.0)
    estimate = search.estimate
    guess = scale * sum(estimate(best["params"], f, False) for f in range(len(folds)))
    guess *= 1.0 + 0.1 * len(weights)  # each weight adds a scoring pass
    if guess > left:
        out["reason"] = (
            f"skipped: estimated {guess:.1f} s, {max(left, 0):.1f} s left of the"
            f" {search.budget_s:g} s budget; [train] repeat_weight kept"
        )
        out["refused"] = refusal(best, baseline_values)
        return out
    began = time.perf_counter()
    per_weight: dict[float, list[np.ndarray]] = {w: [] for w in weights}
    for fold in folds:
        for w, values in scores(best["params"], fold, weights).items():
            per_weight[w].append(values)
    trials = []
    for number, w in enumerate(weights):
        per_fold = [float(v.mean()) for v in per_weight[w]]
        trials.append(
            {
                "trial": number,
                "family": best["family"],
                "params": {"repeat_weight": w},
                "mean": statistics.fmean(per_fold),
                "per_fold": per_fold,
            }
        )
    values = {number: per_weight[w] for number, w in enumerate(weights)}
    decision = decide(trials, values, ONE_SE, baseline_values)
    out.update(
        ran=True,
        reason="repeats allowed ([train] repeatable_events)",
        weights=[
            {
                "repeat_weight": t["params"]["repeat_weight"],
                "mean": t["mean"],
                "per_fold": t["per_fold"],
            }
            for t in trials
        ],
        decision=decision,
        refused=decision["refused"],
        chosen_weight=None if decision["chosen"] is None else weights[decision["chosen"]],
        seconds=time.perf_counter() - began,
    )
    for trial in trials:
        weight = trial["params"]["repeat_weight"]
        log.info("repeat blend: repeat_weight %g, validation %.4f", weight, trial["mean"])
    return out


SERVED = {  # a baseline of the search -> the popularity family's values that serve it
    "popularity": {"family": "popularity", "repeat_weight": 0.0},
    "repeat": {"family": "popularity", "repeat_weight": 1.0},
}


def served_baseline(means: dict[str, float]) -> dict[str, Any]:
    """What a refused search serves: the baseline with the best validation mean (the first
    named on a tie: popularity, the simpler), as {name, validation, params: the [train] values
    of the popularity family that serve it (SERVED)}."""
    name = max(means, key=lambda n: (means[n], -list(means).index(n)))
    return {"name": name, "validation": means[name], "params": dict(SERVED[name])}


def _serving(served: dict[str, Any]) -> str:
    """'nothing beats popularity on validation: serving popularity' (the served baseline)."""
    name = served["name"]
    return f"nothing beats {name} on validation: serving {name} until a model beats it"


def _verdict(result: dict[str, Any]) -> str:
    """The outcome in one sentence: what was chosen and why, or why nothing was."""
    if result["refused"] and result.get("served_baseline"):
        return f"{_serving(result['served_baseline'])} ({result['refused']})"
    if result["refused"]:
        return result["refused"]
    if result["best_params"] is None:
        return result["decision"]["why"]
    verdict = f"chose {describe(result['best_params'])}: {result['decision']['why']}"
    blend = result.get("repeat_blend") or {}
    chosen = blend.get("chosen_weight")
    if chosen is not None:
        mean = next(w["mean"] for w in blend["weights"] if w["repeat_weight"] == chosen)
        baselines = ", ".join(f"{name} {value:.4f}" for name, value in result["baselines"].items())
        verdict += f"; with repeat_weight {chosen:g}: validation {mean:.4f} ({baselines})"
    return verdict


def summary(result: dict[str, Any]) -> list[str]:
    """The report in a few lines for a person (`recomart tune` and the demo's log)."""
    metric = result["metric"]
    trials = result["trials"]
    lines = [
        f"searched {len(trials)} candidates on {len(result['folds'])} folds"
        f" ({result['folds_strategy']['strategy']}, the test split's rule) of"
        f" {result['n_search_users']} users in {result['elapsed_s']:.0f} s of a"
        f" {result['budget_s']:g} s budget"
    ]
    rescaling = result["rescaling"]
    if rescaling["factor"] != 1.0:
        lines.append(f"users: {rescaling['reason']}")
    for family, reason in result["skipped"].items():
        lines.append(f"not searched: {family} ({reason})")
    skipped = result["skipped_candidates"]
    if skipped:
        named = "; ".join(f"{describe(s['params'])} ({s['reason']})" for s in skipped[:5])
        more = f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        lines.append(f"skipped {len(skipped)} for the budget: {named}{more}")
    for family, trial in result["best_by_family"].items():
        lines.append(
            f"{family:<8} best validation {metric} {trial['mean']:.4f} (+/- {trial['std']:.4f})"
        )
    baselines = ", ".join(f"{name} {mean:.4f}" for name, mean in result["baselines"].items())
    lines.append(f"baselines on validation: {baselines}")
    blend = result["repeat_blend"]
    if blend is not None:
        if blend["ran"]:
            means = ", ".join(f"{w['repeat_weight']:g}: {w['mean']:.4f}" for w in blend["weights"])
            weight = blend["chosen_weight"]
            chosen = "none chosen" if weight is None else f"repeat_weight {weight:g}"
            lines.append(f"repeat blend ({means}): {chosen}")
        else:
            lines.append(f"repeat blend not searched: {blend['reason']}")
    if result["refused"] and result.get("served_baseline"):
        served = result["served_baseline"]
        lines.append(
            f"{_serving(served)} ({result['refused']}; train {describe(served['params'])})"
        )
    elif result["refused"]:
        lines.append(f"no choice: {result['refused']}")
    elif result["best"] is None:
        lines.append(f"no choice: {result['decision']['why']}")
    else:
        lines.append(f"chosen: {describe(result['best_params'])}; {result['decision']['why']}")
    return lines


def _log_mlflow(cfg, result: dict[str, Any], test: Split, first: Split, n_folds: int) -> str:
    """One run in the tuning experiment: the choice, the folds, every trial's mean."""
    metric = result["metric"]
    experiment_id = use_experiment(cfg.paths.mlflow, EXPERIMENT)
    with start_run(experiment_id) as run:
        if result["best_params"]:
            mlflow.log_params({f"best_{key}": v for key, v in result["best_params"].items()})
        mlflow.log_params(
            {
                "holdout_strategy": test.strategy,
                "validation_strategy": first.strategy,
                "n_folds": n_folds,
                "n_validation_users": result["n_validation_users"],
                "n_trials": len(result["trials"]),
                "n_skipped": len(result["skipped_candidates"]),
                "budget_s": result["budget_s"],
                "searched_on": result["rescaling"]["searched_on"],
            }
        )
        if first.cutoff is not None:
            mlflow.log_param("validation_cutoff", result["validation_cutoff"])
        if result["refused"]:
            mlflow.set_tag("refused", result["refused"])
        if result["served_baseline"]:
            mlflow.set_tag("served_baseline", result["served_baseline"]["name"])
        for trial in result["trials"]:
            mlflow.log_metric(f"validation_{metric}", trial["mean"], step=trial["trial"])
        for family, trial in result["best_by_family"].items():
            mlflow.log_metric(f"best_{family}_validation_{metric}", trial["mean"])
        best = result["best"]
        chosen = {} if best is None else {f"best_validation_{metric}": best["mean"]}
        mlflow.log_metrics(
            {
                **chosen,
                **{f"{name}_validation_{metric}": v for name, v in result["baselines"].items()},
                "search_seconds": result["elapsed_s"],
            }
        )
        mlflow.log_dict(result, REPORT_FILE)
        return run.info.run_id
