"""Choosing the model family and its parameters on validation data only, robust to noise.

Every candidate (a family and a point of its search space) is fitted on the training part of each
fold and scored on the fold's validation part: fit_and_score(params, fold) returns the per-user
NDCG@K of the fold's warm users (the same users, in the same order, for every candidate of a fold:
models_ml.evaluate.evaluate_many's Scores.per_user), or one number. A candidate's mean is the mean
over folds of its per-fold means, so one lucky split does not pick the model. The folds come from
the caller: time windows inside the training period, cut the way the final test is (models_ml.tune),
or repeated stratified splits of the training part (recomart.bench.movielens). Never the test data.

How the search runs is a `Search` (the defaults reproduce the plain search the MovieLens benchmark
runs: every family in turn, the best mean wins, no budget):

- Order. "by_family": each family in the registry's order (families.learned()), every point of its
  sample (a seeded sample of n_trials grid points, all if fewer). "first_points_first"
  (models_ml.tune): first one point per family (Search.first[family], e.g. [train]'s own values; the
  family named first in Search.first before the others), then the rest of each family's sample,
  family by family; so a small budget tries every family once before refining. The hybrid (EASE +
  ALS) starts from the best ALS and EASE points found before it (in the first round, their first
  points) and searches its own keys on top.
- Free settings (Search.free, {family: setting}): a setting whose values cost nothing extra once
  one of them is fitted (EASE's diagonal: both variants come from one inverse,
  models_ml.families.shared_inverses). The family's sample is drawn without it, and each point
  is tried with every value of it, one after the other on each fold, so the inverse is computed
  once per fold and kept for one fold at a time. n_trials then counts the factorisations.
- Budget (Search.budget_s, wall-clock seconds from Search.started). Each candidate's seconds on
  each fold are estimated (Search.estimate: a priori from the data's shape and the family's
  settings), and scaled, once the family has been fitted on a fold in this search, by measured
  / estimated seconds (the first fit's ratio, then the median of the ratios measured so far;
  shared fits apart).
  A candidate whose folds' estimates do not fit in what is left is skipped; a candidate whose
  next fold does not fit is stopped (its finished folds are not used). A free setting's other
  values ride on the first one's fit: each of their folds runs when it fits together with the
  first one's remaining folds. Both are named in
  `skipped` with the estimate and the reason. No fold starts once its estimate exceeds what is
  left, so the search keeps its budget except for one fold whose estimate was too low: the
  overrun is at most one fold's time (the first fold of a family, estimated a priori, is the
  likely one).
- Rule. "best_mean": the highest mean; a tie goes to the family searched first. "one_se": the
  simplest candidate whose mean is within one standard error of the best mean. The standard
  error is that of the paired difference to the best candidate: per fold f, the per-user
  differences d_f (candidate - best, on the fold's users), SE = sqrt(sum_f var(d_f) / n_f) /
  n_folds (var with ddof 1): the standard error of the difference of the two means over folds.
  Simplest, deterministically: families in SIMPLICITY order (als: the scale family, whose users
  update online; itemknn: K sparse neighbours per item; bpr: factors learnt by sampling; ease: a
  dense items x items matrix; hybrid: EASE and ALS together), then within a family by SIMPLER,
  compared in its order: fewer factors (als.factors, bpr.factors), fewer neighbours, fewer
  iterations, then more regularisation (als.regularization, bpr.regularization, ease.l2,
  ease.dropout); then the earlier trial (the [train] point is tried first).
- Baselines (Search.baselines, {name: per-fold per-user values on the same users}). The chosen
  candidate must beat every baseline on validation (its mean over folds above the baseline's);
  under "one_se" the simplest candidate within one SE that does is chosen. When the best mean
  does not beat a baseline, nothing is chosen and `refused` says so: "no candidate beats
  popularity on validation: best als 0.0012 vs popularity 0.0015". The caller then serves the
  best baseline (models_ml.tune: the popularity family); a baseline family
  (families.baselines()) is never a candidate here.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models_ml.evaluate import evaluate_many
from models_ml.families import baselines, learned, starts_from

BEST_MEAN, ONE_SE = "best_mean", "one_se"
BY_FAMILY, FIRST_POINTS_FIRST = "by_family", "first_points_first"
SIMPLICITY = ("als", "itemknn", "bpr", "ease", "hybrid")  # simplest family first
# setting -> +1: a smaller value is simpler; -1: a larger value is simpler (more regularised)
# (a family's own setting named "<family>.<key>", as in the search points)
SIMPLER = {
    "als.factors": +1,
    "bpr.factors": +1,
    "itemknn.neighbours": +1,
    "als.iterations": +1,
    "bpr.iterations": +1,
    "als.regularization": -1,
    "bpr.regularization": -1,
    "ease.l2": -1,
    "ease.dropout": -1,
    "repeat_weight": +1,  # the blend of repeat scores (models_ml.tune): none is simplest
}


def grid(space: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of the space's values, in a fixed order: keys by their own name (a family's
    `<family>.<key>` by `<key>`), so the seeded sample is the one of the flat names before the
    family tables (`als.factors` sorts as `factors`, before `recency_half_life_days`)."""
    keys = sorted(space, key=lambda k: (k.rpartition(".")[2], k))
    return [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(space[k] for k in keys))
    ]


def sample(space: dict[str, list], n_trials: int, seed: int) -> list[dict[str, Any]]:
    """n_trials distinct grid points drawn with the seed (the whole grid if it is smaller)."""
    points = grid(space)
    if n_trials >= len(points):
        return points
    chosen = np.random.default_rng(seed).choice(len(points), size=n_trials, replace=False)
    return [points[i] for i in sorted(chosen)]


@dataclass(frozen=True)
class Fold:
    """One validation fold: fit on `train`, score on `validation`."""

    train: pd.DataFrame
    validation: pd.DataFrame


Estimate = Callable[[dict[str, Any], int, bool], float]  # (params, fold index, shared) -> s


@dataclass
class Search:
    """How select runs (the module docstring): order, first points, free settings, rule,
    budget, estimates, baselines, clock and a progress callback.

    first: {family: point} tried first in "first_points_first" order (the first family named is
    tried first of all); free: {family: setting} (the module docstring); estimate(params,
    fold_index, shared) -> a priori seconds of one fit and scoring (shared: its inverse is
    already computed); progress(event) is called once at the start ({"event": "start",
    candidates, n_folds, total, elapsed_s}), after each fold ({"event": "fold", family,
    params, fold, n_folds, ndcg, seconds, estimate_s, elapsed_s, eta_s, done, total}) and each
    skipped candidate ({"event": "skip", family, params, estimate_s, reason, elapsed_s}).
    """

    order: str = BY_FAMILY
    first: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    rule: str = BEST_MEAN
    budget_s: float | None = None
    estimate: Estimate | None = None
    baselines: Mapping[str, Sequence[np.ndarray]] | None = None
    free: Mapping[str, str] = field(default_factory=dict)
    clock: Callable[[], float] = time.perf_counter
    started: float | None = None
    progress: Callable[[dict[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        if self.rule not in (BEST_MEAN, ONE_SE):
            raise ValueError(f"rule must be {BEST_MEAN} or {ONE_SE}, got {self.rule!r}")
        if self.order not in (BY_FAMILY, FIRST_POINTS_FIRST):
            raise ValueError(f"order must be {BY_FAMILY} or {FIRST_POINTS_FIRST}")


def _start(best: Mapping[str, dict[str, Any]], family: str) -> dict[str, Any]:
    """The best points of the families `family` starts from (families.starts_from: the
    hybrid from ALS and EASE; their own keys), where its search starts."""
    start: dict[str, Any] = {}
    for other in starts_from(family):
        if other in best:
            start.update(best[other]["params"])
    start.pop("family", None)
    return start


def plan(
    spaces: Mapping[str, Mapping[str, list]], n_trials: int, seed: int, search: Search
) -> list[list[tuple[str, dict[str, Any]]]]:
    """The search as steps in order, each a list of (family, point) run fold by fold together:
    one point, or one point with every value of its family's free setting (Search.free). The
    hybrid's points are completed with its start when their step runs."""
    families = [f for f in learned() if f in spaces]
    steps = {f: _family_steps(f, dict(spaces[f]), n_trials, seed, search) for f in families}
    if search.order == BY_FAMILY:
        return [step for f in families for step in steps[f]]
    named_first = [f for f in search.first if f in steps]
    first_round = named_first + [f for f in families if f not in named_first]
    ordered = [steps[f][0] for f in first_round]
    return ordered + [step for f in families for step in steps[f][1:]]


def _family_steps(
    family: str, space: dict[str, list], n_trials: int, seed: int, search: Search
) -> list[list[tuple[str, dict[str, Any]]]]:
    """One family's steps: Search.first's point first (when given), then its seeded sample;
    with a free setting, the sample is drawn without it and each point tried with each of its
    values (the first point's own value first)."""
    free = search.free.get(family)
    values = list(space.pop(free)) if free in space else []
    points = sample(space, n_trials, seed)
    first = search.first.get(family) if search.order == FIRST_POINTS_FIRST else None
    if first is not None:
        first = dict(first)
        head = {key: value for key, value in first.items() if key != free}
        points = [head, *(p for p in points if p != head)]
    steps = []
    for number, point in enumerate(points):
        if not values:
            steps.append([(family, point)])
            continue
        own = [first[free]] if number == 0 and first is not None and free in first else []
        ordered = own + [v for v in values if v not in own]
        steps.append([(family, {**point, free: v}) for v in ordered])
    return steps


class Estimator:
    """Seconds of one candidate on one fold: Search.estimate, scaled by measured / estimated
    seconds, per family and per kind of fit (shared or not): from the first measured fit of
    that kind in this search on, the median of the ratios measured so far (one slow first fit,
    e.g. a library's warm-up, does not set the scale for the rest of the search). A shared fit
    not yet measured takes its family's unshared scale."""

    def __init__(self, estimate: Estimate | None) -> None:
        self.estimate = estimate
        self.ratios: dict[tuple[str, bool], list[float]] = {}

    @property
    def scale(self) -> dict[str, float]:
        """{family (", shared" for shared fits): the factor applied to its estimates}."""
        return {
            family + (", shared" if shared else ""): statistics.median(ratios)
            for (family, shared), ratios in self.ratios.items()
        }

    def seconds(self, params: dict[str, Any], fold: int, shared: bool = False) -> float | None:
        if self.estimate is None:
            return None
        family = params["family"]
        ratios = self.ratios.get((family, shared)) or self.ratios.get((family, False))
        factor = statistics.median(ratios) if ratios else 1.0
        return self.estimate(params, fold, shared) * factor

    def observe(self, params: dict[str, Any], fold: int, shared: bool, seconds: float) -> None:
        if self.estimate is None:
            return
        prior = self.estimate(params, fold, shared)
        if prior > 0:
            ratio = max(seconds, 1e-6) / prior
            self.ratios.setdefault((params["family"], shared), []).append(ratio)


def _values(result: Any) -> np.ndarray:
    """A fold's per-user values (one number counts as one user)."""
    return np.atleast_1d(np.asarray(result, dtype=np.float64))


def _fold_means(values: Sequence[np.ndarray]) -> list[float]:
    return [float(v.mean()) if len(v) else 0.0 for v in values]


def paired_se(values: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    """The standard error of mean-over-folds(values) - mean-over-folds(reference), users paired
    within each fold: sqrt(sum_f var(d_f) / n_f) / n_folds."""
    terms = []
    for fold, (a, b) in enumerate(zip(values, reference, strict=True)):
        if len(a) != len(b):
            raise ValueError(
                f"fold {fold + 1}: {len(a)} vs {len(b)} users; candidates must be scored on the"
                " same users of a fold"
            )
        d = a - b
        terms.append(float(d.var(ddof=1)) / len(d) if len(d) > 1 else 0.0)
    return math.sqrt(sum(terms)) / max(len(terms), 1)


def simplicity(trial: dict[str, Any]) -> tuple:
    """The sort key of "simplest first" (the module docstring)."""
    family = trial["family"]
    params = trial["params"]
    settings = tuple(
        sign * float(params[key]) if key in params and _is_number(params[key]) else 0.0
        for key, sign in SIMPLER.items()
    )
    order = SIMPLICITY.index(family) if family in SIMPLICITY else len(SIMPLICITY)
    return (order, settings, trial["trial"])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def baseline_means(baselines: Mapping[str, Sequence[np.ndarray]]) -> dict[str, float]:
    """Each baseline's mean over folds of its per-fold means."""
    return {
        name: statistics.fmean(_fold_means([_values(v) for v in values]))
        for name, values in baselines.items()
    }


def refusal(trial: dict[str, Any], baselines: Mapping[str, Sequence[np.ndarray]]) -> str | None:
    """Why a trial (the best candidate) may not be chosen: the first baseline whose mean it does
    not beat, in words; None when it beats them all."""
    for name, mean in baseline_means(baselines).items():
        if not trial["mean"] > mean:
            return (
                f"no candidate beats {name} on validation: best {trial['family']}"
                f" {trial['mean']:.4f} vs {name} {mean:.4f}"
            )
    return None


def decide(
    trials: list[dict[str, Any]],
    values: Mapping[int, list[np.ndarray]],
    rule: str = BEST_MEAN,
    baselines: Mapping[str, Sequence[np.ndarray]] | None = None,
) -> dict[str, Any]:
    """The choice among finished trials (values: trial number -> per-fold per-user values).

    Returns {rule, best_mean (trial number or None), chosen (trial number or None), refused
    (str or None), within: [{trial, family, mean, gap, se}] for one_se, baselines: {name:
    mean}, why}."""
    out: dict[str, Any] = {"rule": rule, "best_mean": None, "chosen": None, "refused": None}
    means = baseline_means(baselines or {})
    out["baselines"] = means
    if not trials:
        out["why"] = "no candidate was scored on every fold"
        return out
    best = max(trials, key=lambda t: (t["mean"], -learned().index(t["family"]), -t["trial"]))
    out["best_mean"] = best["trial"]
    refused = refusal(best, baselines or {})
    if refused:
        out["refused"] = out["why"] = refused
        return out
    if rule == BEST_MEAN:
        out["chosen"] = best["trial"]
        out["why"] = f"{best['family']} (trial {best['trial']}) has the best mean"
        return out
    within = []
    for trial in trials:
        se = paired_se(values[trial["trial"]], values[best["trial"]])
        gap = best["mean"] - trial["mean"]
        beats = all(trial["mean"] > mean for mean in means.values())
        if gap <= se and beats:
            within.append({**_brief(trial), "gap": gap, "se": se})
    chosen = min(within, key=lambda w: simplicity(trials_by_number(trials)[w["trial"]]))
    out["within"] = within
    out["chosen"] = chosen["trial"]
    out["why"] = (
        f"{chosen['family']} (trial {chosen['trial']}, mean {chosen['mean']:.4f}) is the simplest"
        f" of {len(within)} candidate(s) within one standard error of the best mean"
        f" {best['mean']:.4f} ({best['family']}, trial {best['trial']}): gap {chosen['gap']:.4f}"
        f" <= SE {chosen['se']:.4f}"
    )
    return out


def trials_by_number(trials: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {t["trial"]: t for t in trials}


def _brief(trial: dict[str, Any]) -> dict[str, Any]:
    return {"trial": trial["trial"], "family": trial["family"], "mean": trial["mean"]}


def select(
    folds: list[Fold],
    spaces: Mapping[str, Mapping[str, list]],
    fit_and_score: Callable[[dict[str, Any], Fold], Any],
    n_trials: int,
    seed: int,
    search: Search | None = None,
) -> dict[str, Any]:
    """Search the families of `spaces` ({family: {setting: [values]}}) over the folds, as
    `search` says (the module docstring; default: every point, best mean, no budget).

    fit_and_score(point, fold) fits the candidate of point ({"family": ..., settings}) on
    fold.train and returns its per-user validation NDCG (or one number). Returns {trials:
    [{trial, family, params, mean, std, per_fold, n_users, seconds, estimate_s}], best_by_family:
    {family: trial}, best: the chosen trial (None when refused or nothing was scored), best_mean:
    the trial with the highest mean, decision (decide), refused, skipped: [{family, params,
    estimate_s, reason}], budget_s, elapsed_s}.
    """
    search = search or Search()
    baseline = [family for family in spaces if family in baselines()]
    if baseline:
        raise ValueError(
            f"{baseline} is a baseline, not a candidate: it is what a refused search serves"
        )
    unknown = [family for family in spaces if family not in learned()]
    if unknown:
        raise ValueError(f"unknown families {unknown}: choose from {learned()}")
    if not folds:
        raise ValueError("no validation fold to select on")
    run = _Run(search, folds, fit_and_score, plan(spaces, n_trials, seed, search))
    planned = sum(len(step) for step in run.steps)
    _report(search, {"event": "start", "candidates": planned, "n_folds": len(folds),
                     "total": run.total, "elapsed_s": run.elapsed()})  # fmt: skip
    for index, step in enumerate(run.steps):
        start = _start(run.best, step[0][0])
        run.step([{**start, **point, "family": family} for family, point in step], index)
    decision = decide(run.trials, run.values, search.rule, search.baselines)
    by_number = trials_by_number(run.trials)
    return {
        "trials": run.trials,
        "best_by_family": run.best,
        "best": by_number.get(decision["chosen"]),
        "best_mean": by_number.get(decision["best_mean"]),
        "decision": decision,
        "refused": decision["refused"],
        "skipped": run.skipped,
        "budget_s": search.budget_s,
        "elapsed_s": run.elapsed(),
        "calibration": run.estimator.scale,
        "values": run.values,
    }


class _Run:
    """One search's state: the clock, the estimates, the finished trials and the skipped ones."""

    def __init__(self, search: Search, folds: list[Fold], fit_and_score, steps) -> None:
        self.search, self.folds, self.steps = search, folds, steps
        self.fit_and_score = fit_and_score
        self.started = search.clock() if search.started is None else search.started
        self.estimator = Estimator(search.estimate)
        self.trials: list[dict[str, Any]] = []
        self.values: dict[int, list[np.ndarray]] = {}
        self.best: dict[str, dict[str, Any]] = {}
        self.skipped: list[dict[str, Any]] = []
        self.done, self.total = 0, sum(len(step) for step in steps) * len(folds)

    def elapsed(self) -> float:
        return self.search.clock() - self.started

    def left(self) -> float:
        budget = self.search.budget_s
        return math.inf if budget is None else budget - self.elapsed()

    def _skip(self, params: dict[str, Any], estimate, reason: str, units: int) -> None:
        entry = {"family": params["family"], "params": params, "estimate_s": estimate}
        self.skipped.append({**entry, "reason": reason})
        self.total -= units
        _report(self.search, {"event": "skip", **entry, "reason": reason,
                              "elapsed_s": self.elapsed()})  # fmt: skip

    def _no_room(self, estimate: float, left: float) -> str:
        return (
            f"estimated {estimate:.1f} s, {max(left, 0.0):.1f} s left of the"
            f" {self.search.budget_s:g} s budget"
        )

    def step(self, candidates: list[dict[str, Any]], index: int) -> None:
        """Run one step's candidates fold by fold. The first (the primary) must fit in what is
        left, on every fold, to start; the others reuse its fit (shared) and run on a fold only
        if their fold and the primary's remaining folds still fit, so they never crowd it out."""
        n_folds = len(self.folds)
        primary = candidates[0]
        estimate = _total(self.estimator, primary, n_folds, shared=False)
        if estimate is not None and estimate > self.left():
            reason = self._no_room(estimate, self.left())
            for params in candidates:
                own = _total(self.estimator, params, n_folds, shared=params is not primary)
                why = reason if params is primary else f"the fit it shares: {reason}"
                self._skip(params, own, why, n_folds)
            return
        running = [
            {"params": params, "values": [], "seconds": 0.0, "shared": params is not primary,
             "estimate": _total(self.estimator, params, n_folds, params is not primary)}
            for params in candidates
        ]  # fmt: skip
        for f, fold in enumerate(self.folds):
            fitted = False  # has a candidate of this step been fitted on this fold
            for entry in running:
                if entry.get("stopped"):
                    continue
                params = entry["params"]
                guess = self.estimator.seconds(params, f, fitted)
                needed = guess
                if guess is not None and entry["shared"] and not running[0].get("stopped"):
                    needed = guess + sum(
                        self.estimator.seconds(primary, g, False) for g in range(f + 1, n_folds)
                    )  # the primary's remaining folds come first
                if needed is not None and needed > self.left():
                    entry["stopped"] = True
                    reason = f"stopped before fold {f + 1}/{n_folds}: " + self._no_room(
                        needed, self.left()
                    )
                    self._skip(params, entry["estimate"], reason, n_folds - f)
                    continue
                began = self.search.clock()
                fold_values = _values(self.fit_and_score(params, fold))
                seconds = self.search.clock() - began
                self.estimator.observe(params, f, fitted, seconds)
                fitted = True
                entry["values"].append(fold_values)
                entry["seconds"] += seconds
                self.done += 1
                _report(self.search, {
                    "event": "fold", "family": params["family"], "params": params,
                    "fold": f + 1, "n_folds": n_folds, "ndcg": float(fold_values.mean()),
                    "seconds": seconds, "estimate_s": guess, "elapsed_s": self.elapsed(),
                    "eta_s": self._eta(index, running, f), "done": self.done, "total": self.total,
                })  # fmt: skip
        for entry in running:
            if not entry.get("stopped"):
                self._finish(entry)

    def _finish(self, entry: dict[str, Any]) -> None:
        params = entry["params"]
        per_fold = _fold_means(entry["values"])
        trial = {
            "trial": len(self.trials),
            "family": params["family"],
            "params": params,
            "mean": statistics.fmean(per_fold),
            "std": float(np.std(per_fold)),
            "per_fold": per_fold,
            "n_users": [len(v) for v in entry["values"]],
            "seconds": entry["seconds"],
            "estimate_s": entry["estimate"],
        }
        self.values[trial["trial"]] = entry["values"]
        self.trials.append(trial)
        family = params["family"]
        if family not in self.best or trial["mean"] > self.best[family]["mean"]:
            self.best[family] = trial

    def _eta(self, index: int, running: list[dict[str, Any]], fold: int) -> float | None:
        """Seconds the planned rest is estimated to take (at most what is left)."""
        if self.estimator.estimate is None:
            return None
        n_folds = len(self.folds)
        live = [e for e in running if not e.get("stopped")]
        rest = 0.0
        for f in range(fold + 1, n_folds):
            rest += sum(
                self.estimator.seconds(e["params"], f, i > 0) or 0.0 for i, e in enumerate(live)
            )
        for step in self.steps[index + 1 :]:
            for i, (family, point) in enumerate(step):
                rest += _total(self.estimator, {**point, "family": family}, n_folds, i > 0) or 0.0
        return min(rest, max(self.left(), 0.0))


def _total(estimator: Estimator, params: dict[str, Any], n_folds: int, shared: bool):
    """The estimated seconds of a candidate on every fold (None without estimates)."""
    guesses = [estimator.seconds(params, f, shared) for f in range(n_folds)]
    return None if guesses[0] is None else float(sum(guesses))


def _report(search: Search, event: dict[str, Any]) -> None:
    if search.progress is not None:
        search.progress(event)


def validation_ndcg(
    make: Callable[[dict[str, Any]], Any],
    k: int,
    min_rating: float = 0,
    repeatable: Sequence[str] = (),
    max_users: int | None = None,
    seed: int = 0,
    **fit_kwargs: Any,
) -> Callable[[dict[str, Any], Fold], np.ndarray]:
    """fit_and_score for select: make(params) builds a recommender, fitted on fold.train (with
    fit_kwargs, e.g. the catalog) and scored on fold.validation; returns the per-user NDCG@k of
    the fold's warm users (evaluate_many: the same users for every candidate of the fold, with
    the repeat policy `repeatable`, at most max_users of them, seeded)."""

    def fit_and_score(params: dict[str, Any], fold: Fold) -> np.ndarray:
        model = make(params).fit(fold.train, **fit_kwargs)
        scores = evaluate_many(
            {"model": model}, fold.train, fold.validation, k, min_rating, max_users=max_users,
            seed=seed, repeatable=repeatable,
        )["model"]  # fmt: skip
        return scores.per_user[f"ndcg_at_{k}"]

    return fit_and_score
