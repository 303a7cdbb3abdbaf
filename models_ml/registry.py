"""The registry gate: the `champion` alias moves only to a model that beats the baselines and
the current champion on the promotion metric (NDCG@K) by more than the noise of the holdout.

The rule (`decide`, pure numpy): per-user metric values of the candidate and of each other
model on the same users; a paired bootstrap over users (`paired_bootstrap`: resample users with
replacement, seeded, `bootstrap_samples` times; percentile interval at `confidence`) of the mean
difference candidate - other. Promote only when
1. at least `min_eval_users` users were scored;
2. against each baseline (models_ml.train.BASELINES: popularity, recent popularity and the
   repeat baseline, all under the run's repeat policy) the interval's lower bound is above 0;
3. when a champion exists, the lower bound of candidate - champion is above `min_improvement`.
Otherwise the champion stays, with a reason naming the gain, its interval and the user count.

A baseline served as a model (`decide(baseline=...)`: the popularity family, trained when the
model search found nothing that beats the baselines on validation) is not held to that rule,
which it cannot pass (it is a baseline): it is promoted when there is no champion, so the shop
is served the baseline until a model beats it, or when the champion is a baseline too (the same
rule on newer data); never over a learned champion. The comparisons are still computed and
logged. A learned model later faces the usual rule, the baseline champion included.

How the champion gets per-user values on the candidate's holdout (`champion_scores`):
- same holdout (the champion's run logged the same holdout fingerprint, i.e. the same train and
  test rows) and the same scored users: the per-user values it logged (PER_USER_DIR/...parquet);
- otherwise (new data, another strategy, an older run without them): the champion's recipe (the
  recommender parameters saved with its model) is refitted on the current training rows and
  scored on the current test rows, because the champion model itself may have been refitted on
  rows that are now in the test period.
A failed gate leaves the alias where it was; the run records why (tags and promotion.json).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from recomart_core.schema import USER

CHAMPION = "champion"
HOLDOUT_TAG = "holdout_sha256"
FAMILY_TAG = "family"  # the run's model family (models_ml.train tags every run with it)
PER_USER_DIR = "eval"  # run artifacts: eval/per_user_<metric>.parquet
LOGGED = "logged per-user values, same holdout"
REFITTED = "refitted recipe on this holdout"
BOOTSTRAP_CELLS = 1 << 21  # resampled user indexes held at a time (16 MB of int64, and as much
# again for the values they pick): about 20 resamples at a time for 100K users


def per_user_artifact(metric: str) -> str:
    """Run artifact path of the per-user values of `metric`: user_id and one column per model."""
    return f"{PER_USER_DIR}/per_user_{metric}.parquet"


@dataclass(frozen=True)
class Comparison:
    """Candidate - other on the same users: means, the mean gain and its bootstrap interval."""

    other: str  # "popularity", "recent_popularity", "repeat", "champion"
    candidate: float
    other_value: float
    gain: float
    low: float
    high: float
    threshold: float  # the lower bound must be above this
    passed: bool


@dataclass
class Decision:
    promote: bool
    reason: str
    metric: str
    candidate: float  # mean over the scored users
    baselines: dict[str, float]  # means
    n_users: int = 0
    confidence: float = 0.95
    bootstrap_samples: int = 0
    min_eval_users: int = 0
    min_improvement: float = 0.0
    comparisons: list[dict] = field(default_factory=list)  # Comparison as dicts
    champion_version: str | None = None
    champion_value: float | None = None  # mean over the same users
    champion_scored_by: str | None = None  # LOGGED or REFITTED

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ChampionScores:
    version: str
    values: np.ndarray  # per user, aligned with the candidate's users
    scored_by: str
    family: str | None = None  # the champion run's `family` tag (None: an older run)


def bootstrap_means(
    differences: np.ndarray, samples: int, seed: int, max_cells: int = BOOTSTRAP_CELLS
) -> np.ndarray:
    """(samples, n_columns) means of `differences` (n_users, n_columns) over users resampled
    with replacement; every column sees the same resamples. Users are drawn in chunks of about
    max_cells indexes, which changes memory, not the result."""
    differences = np.asarray(differences, dtype=np.float64)
    if differences.ndim == 1:
        differences = differences[:, None]
    n = len(differences)
    if n == 0:
        raise ValueError("no users to resample")
    columns = np.ascontiguousarray(differences.T)  # one contiguous row per comparison
    rng = np.random.default_rng(seed)
    means = np.empty((samples, len(columns)))
    rows = max(1, max_cells // n)
    for start in range(0, samples, rows):
        count = min(rows, samples - start)
        picks = rng.integers(0, n, size=(count, n))
        for i, values in enumerate(columns):
            means[start : start + count, i] = values[picks].mean(axis=1)
    return means


def percentile_interval(means: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper percentile bounds at `confidence` of each column of bootstrap means."""
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail], axis=0)
    return low, high


def paired_bootstrap(
    candidate: np.ndarray,
    other: np.ndarray,
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    max_cells: int = BOOTSTRAP_CELLS,
) -> tuple[float, float, float]:
    """(mean difference, lower, upper) of candidate - other, paired per user, percentile CI."""
    candidate, other = np.asarray(candidate, float), np.asarray(other, float)
    if candidate.shape != other.shape:
        raise ValueError(f"{len(candidate)} candidate values but {len(other)} to compare with")
    diff = candidate - other
    low, high = percentile_interval(bootstrap_means(diff, samples, seed, max_cells), confidence)
    return float(diff.mean()), float(low[0]), float(high[0])


def _finding(c: Comparison) -> str:
    if c.passed:
        return "above 0" if c.threshold == 0 else f"above min_improvement {c.threshold:g}"
    if c.high < 0:
        return "worse"
    if c.low > 0:
        return f"not above min_improvement {c.threshold:g}"
    return "within noise"


def _signed(value: float) -> str:
    return f"{round(value, 4) + 0.0:+.4f}"  # + 0.0: no "-0.0000" for a rounding-level loss


def _describe(metric: str, c: Comparison, confidence: float, n_users: int) -> str:
    return (
        f"{metric} gain over {c.other} {_signed(c.gain)}, {100 * confidence:g}% CI"
        f" [{_signed(c.low)}, {_signed(c.high)}] over {n_users} users: {_finding(c)}"
    )


def decide(
    metric: str,
    candidate: np.ndarray,
    baselines: Mapping[str, np.ndarray],
    champion: np.ndarray | None = None,
    *,
    min_eval_users: int = 50,
    min_improvement: float = 0.0,
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    baseline: str | None = None,
    champion_baseline: bool = False,
) -> Decision:
    """The gate on per-user values (all aligned on the same users): see the module docstring.

    Ties do not promote: equal values give the interval [0, 0], whose lower bound is not above 0.
    baseline: the candidate is this baseline served as a model (e.g. "popularity"): promoted
    only when there is no champion, or when champion_baseline (the champion is a baseline too).
    """
    candidate = np.asarray(candidate, dtype=np.float64)
    others = {name: np.asarray(v, dtype=np.float64) for name, v in baselines.items()}
    if champion is not None:
        others[CHAMPION] = np.asarray(champion, dtype=np.float64)
    for name, values in others.items():
        if values.shape != candidate.shape:
            raise ValueError(f"{name}: {len(values)} users, the candidate has {len(candidate)}")
    n = len(candidate)
    decision = Decision(
        promote=False,
        reason="",
        metric=metric,
        candidate=float(candidate.mean()) if n else float("nan"),
        baselines={name: float(others[name].mean()) if n else float("nan") for name in baselines},
        n_users=n,
        confidence=confidence,
        bootstrap_samples=samples,
        min_eval_users=min_eval_users,
        min_improvement=min_improvement,
        champion_value=float(others[CHAMPION].mean()) if champion is not None and n else None,
    )
    comparisons = []
    if n:
        names = list(others)
        diffs = np.column_stack([candidate - others[name] for name in names])
        low, high = percentile_interval(bootstrap_means(diffs, samples, seed), confidence)
        for i, name in enumerate(names):
            threshold = min_improvement if name == CHAMPION else 0.0
            comparison = Comparison(
                other=name,
                candidate=decision.candidate,
                other_value=float(others[name].mean()),
                gain=float(diffs[:, i].mean()),
                low=float(low[i]),
                high=float(high[i]),
                threshold=threshold,
                passed=bool(low[i] > threshold),
            )
            comparisons.append(comparison)
    decision.comparisons = [asdict(c) for c in comparisons]
    if baseline is not None:
        return _baseline_decision(decision, baseline, champion is not None, champion_baseline)
    keep = "the champion stays" if champion is not None else "no champion is set"
    if n < min_eval_users:
        decision.reason = (
            f"{metric} scored on {n} users < min_eval_users {min_eval_users}:"
            f" too few to tell a gain from noise; {keep}"
        )
        return decision
    for c in comparisons:
        if not c.passed:
            decision.reason = _describe(metric, c, confidence, n)
            return decision
    decision.promote = True
    if champion is None:
        decision.reason = "first champion: " + "; ".join(
            _describe(metric, c, confidence, n) for c in comparisons
        )
    else:
        decision.reason = _describe(metric, comparisons[-1], confidence, n)
    return decision


def _baseline_decision(
    decision: Decision, baseline: str, has_champion: bool, champion_baseline: bool
) -> Decision:
    """The gate of a baseline served as a model (the module docstring)."""
    if not has_champion:
        decision.promote = True
        decision.reason = (
            f"no champion: {baseline} is served as the baseline until a model beats it"
        )
    elif champion_baseline:
        decision.promote = True
        decision.reason = (
            f"the champion is a baseline too: {baseline} on this data replaces it, served as"
            " the baseline until a model beats it"
        )
    else:
        decision.reason = (
            f"{baseline} is a baseline: it never replaces a learned champion; the champion stays"
        )
    return decision


def current_champion(client: MlflowClient, model_name: str):
    """The model version holding the champion alias, or None."""
    try:
        return client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None


def log_per_user(metric: str, user_ids: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
    """Log the per-user values of every model (columns) to the active run."""
    columns = {name: np.asarray(v, dtype=np.float64) for name, v in values.items()}
    frame = pd.DataFrame({USER: np.asarray(user_ids), **columns})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(per_user_artifact(metric)).name
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=PER_USER_DIR)


def logged_per_user(
    run_id: str, metric: str, column: str, user_ids: np.ndarray
) -> np.ndarray | None:
    """A run's logged per-user values of `column` on exactly these users, else None."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=per_user_artifact(metric), dst_path=tmp
            )
            frame = pd.read_parquet(local)
    except (MlflowException, OSError):
        return None
    if column not in frame or not np.array_equal(frame[USER].to_numpy(), user_ids):
        return None
    return frame[column].to_numpy(dtype=np.float64)


def champion_scores(
    client: MlflowClient,
    model_name: str,
    metric: str,
    column: str,
    holdout_hash: str,
    user_ids: np.ndarray,
    refit_and_score: Callable[[dict], np.ndarray],
    params_artifact: str,
) -> ChampionScores | None:
    """The champion's per-user values of `metric` on the candidate's users, or None if there
    is no champion: its run's logged values (column `column`) when it used the same holdout and
    scored the same users, else its recipe refitted and scored by refit_and_score(meta), meta
    the champion package's params.json (models_ml.families.from_params reads every format)."""
    version = current_champion(client, model_name)
    if version is None:
        return None
    run = client.get_run(version.run_id)
    family = run.data.tags.get(FAMILY_TAG)
    if run.data.tags.get(HOLDOUT_TAG) == holdout_hash:
        values = logged_per_user(version.run_id, metric, column, user_ids)
        if values is not None:
            return ChampionScores(str(version.version), values, LOGGED, family)
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=version.run_id, artifact_path=params_artifact, dst_path=tmp
        )
        meta = json.loads(Path(local).read_text())  # the package's params.json, any format
    values = np.asarray(refit_and_score(meta), dtype=np.float64)
    return ChampionScores(str(version.version), values, REFITTED, family)


def promote(client: MlflowClient, model_name: str, version: str) -> None:
    client.set_registered_model_alias(model_name, CHAMPION, version)
