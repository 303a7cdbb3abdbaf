"""The ALS family's factors fitted by Spark MLlib (engine = "spark"), on the confidence matrix
implicit's ALS fits on the DuckDB engine.

`fitting_on(session)` makes every ALS fit inside the block run in Spark MLlib
(`pyspark.ml.recommendation.ALS`, implicitPrefs=True) in that Spark session; outside any block
(the DuckDB engine, the model search, the API) the family fits with implicit as always. The rows
MLlib fits are the non-zero cells of the same user x item matrix implicit fits (models_ml.matrix:
event weights, ratings, amounts, recency, BM25, alpha), ids the matrix's row and column numbers
(the dense codes' positions), and the factors come back whole columns at a time (Arrow) into numpy
arrays in matrix order, so everything after the fit (evaluation, the package, the API) is the code
the implicit fit goes through.

Confidence: implicit's ALS (alpha 1: alpha is in the matrix) takes a cell's value C as the
confidence, preference 1 if C > 0 else 0 (a return: |C|). MLlib takes a rating r and uses
c = 1 + alpha * |r|, preference 1 if r > 0 else 0. The fit hands MLlib r = sign(C) * (|C| - 1) /
alpha with [train] alpha, so c = |C|: the same confidences, the same preferences. Where they
differ:

- a cell with 0 < C <= 1 (a weak event, decayed by recency, or a small BM25 value) has c = |C|
  in implicit; MLlib cannot give a preferred cell a confidence below 1, so it gets 1 (r = a tiny
  positive number: r = 0 would mean "not preferred"); a negative cell with |C| <= 1 is left out
  (MLlib's unobserved cell: preference 0, confidence 1);
- regularisation: implicit solves every row with [train.als] regularization (lambda) as it is;
  MLlib multiplies regParam by the number of preferred cells of the row it solves (ALS-WR:
  regParam * n_u for a user, regParam * n_i for an item). reg_param maps lambda so that the two
  weigh the factors alike in total: regParam = lambda * (rows + columns with cells) / (2 * the
  preferred cells), i.e. lambda over the mean count. Users and items with more cells than the
  mean are still held closer to 0 by MLlib than by implicit, those with fewer less so (passing
  lambda itself would multiply it by the counts: on the demo's lambda 50 MLlib fell to
  popularity's NDCG);
- solver and start: implicit runs a few conjugate-gradient steps per row from factors drawn with
  its random_state; MLlib solves each row exactly (Cholesky) from its own random start (seed);
- MLlib returns no factors for a row or column without a cell: they are zeros here (cold items
  are then imputed from their catalog groups, as after implicit's fit);
- the package keeps [train.als] regularization beside the factors (explain's least squares
  splits a score with it, as for implicit's factors), not regParam;
- rank = factors, maxIter = iterations; an iteration solves the items, then the users, so the
  users' factors are the exact least-squares answer to the items' (what tests check).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from scipy.sparse import csr_matrix

if TYPE_CHECKING:  # pyspark is imported only when Spark fits
    from pyspark.sql import SparkSession

log = logging.getLogger("training")

BACKEND = "mllib"  # the fit_backend tag of a run whose ALS factors MLlib fitted
DRIVER = "driver"  # the fit_backend tag when the family fits in this process (numpy, implicit)
USER_COL, ITEM_COL, RATING_COL = "user", "item", "rating"
MAX_ID = 2**31 - 1  # MLlib's ids are Spark ints
CHECKPOINT_INTERVAL = 5  # iterations between ALS checkpoints (with a checkpoint folder)
MIN_RATING = 1e-6  # a preferred cell whose confidence MLlib cannot lower below 1 (module doc)


@dataclass
class Backend:
    """The Spark session ALS fits in, and the MLlib params of every fit made so far (the
    estimator's own values, read back from it: what training logs)."""

    session: SparkSession
    fits: list[dict[str, Any]] = field(default_factory=list)


_ACTIVE: ContextVar[Backend | None] = ContextVar("mllib_backend", default=None)


@contextmanager
def fitting_on(
    session: SparkSession, checkpoint_dir: str | Path | None = None
) -> Iterator[Backend]:
    """Inside the block, ALS fits run in MLlib in `session` (active()); yields the Backend.
    checkpoint_dir: where Spark checkpoints ALS's factors every CHECKPOINT_INTERVAL iterations
    (the session's own when it has one; without any, ALS's lineage grows with each iteration
    and serialising its tasks can overflow the JVM's stack: seen at 15 iterations)."""
    context = session.sparkContext
    ours = checkpoint_dir is not None and context.getCheckpointDir() is None
    if ours:
        context.setCheckpointDir(str(checkpoint_dir))
    backend = Backend(session)
    token = _ACTIVE.set(backend)
    try:
        yield backend
    finally:
        _ACTIVE.reset(token)
        if ours:  # Spark's folder for this context (<checkpoint_dir>/<uuid>): ours to remove
            shutil.rmtree(context.getCheckpointDir().removeprefix("file:"), ignore_errors=True)


def active() -> Backend | None:
    """The Backend of the innermost fitting_on block, None outside any (implicit fits)."""
    return _ACTIVE.get()


def ratings(user_items: csr_matrix, alpha: float) -> pa.Table:
    """MLlib's rows for a confidence matrix (users x items, alpha in it): user and item (the
    matrix's row and column numbers, int32), rating = sign(C) * (|C| - 1) / alpha, so that MLlib's
    1 + alpha * |rating| is |C| (module doc: cells MLlib cannot weigh the same are changed or left
    out). ValueError for a matrix wider or taller than Spark's int ids."""
    if max(user_items.shape) > MAX_ID:
        raise ValueError(f"MLlib ids are 32-bit: {user_items.shape} does not fit")
    coo = user_items.tocoo()
    values = coo.data.astype(np.float64)
    magnitude = (np.abs(values) - 1.0) / alpha
    rating = np.where(values > 0, np.maximum(magnitude, MIN_RATING), -magnitude)
    kept = (values > 0) | (magnitude > 0)  # a weak negative cell is an unobserved one
    return pa.table(
        {
            USER_COL: coo.row[kept].astype(np.int32),
            ITEM_COL: coo.col[kept].astype(np.int32),
            RATING_COL: rating[kept].astype(np.float32),
        }
    )


def reg_param(user_items: csr_matrix, regularization: float) -> float:
    """MLlib's regParam for implicit's regularization on this matrix (module doc): lambda times
    (rows + columns with cells) / (2 * preferred cells); lambda itself without preferred cells."""
    preferred = int((user_items.data > 0).sum())
    if preferred == 0:
        return regularization
    rows = int((np.diff(user_items.indptr) > 0).sum())
    cols = int((np.bincount(user_items.indices, minlength=user_items.shape[1]) > 0).sum())
    return regularization * (rows + cols) / (2 * preferred)


def _factors(frame: Any, rows: int, rank: int) -> np.ndarray:
    """MLlib's factor DataFrame (id, features: array<float>) as a float32 rows x rank array in
    id order, zeros for ids it has no factors for; whole columns through Arrow."""
    table = frame.toArrow()
    ids = table.column("id").to_numpy()
    features = table.column("features").combine_chunks()
    values = features.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    out = np.zeros((rows, rank), dtype=np.float32)
    out[ids] = values.reshape(len(ids), rank)
    return out


def fit_als(
    backend: Backend,
    user_items: csr_matrix,
    factors: int,
    iterations: int,
    regularization: float,
    alpha: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(user factors, item factors), float32 in matrix order, of MLlib's implicit ALS on the
    confidence matrix user_items (ratings) with rank = factors, maxIter = iterations, regParam =
    reg_param(user_items, regularization), alpha, seed; the estimator's params appended to
    backend.fits."""
    from pyspark.ml.recommendation import ALS

    spark = backend.session
    rows = spark.createDataFrame(ratings(user_items, alpha))
    estimator = ALS(
        rank=factors,
        maxIter=iterations,
        regParam=reg_param(user_items, regularization),
        alpha=alpha,
        implicitPrefs=True,
        nonnegative=False,
        checkpointInterval=CHECKPOINT_INTERVAL,
        seed=seed,
        userCol=USER_COL,
        itemCol=ITEM_COL,
        ratingCol=RATING_COL,
        numUserBlocks=spark.sparkContext.defaultParallelism,
        numItemBlocks=spark.sparkContext.defaultParallelism,
    )
    model = estimator.fit(rows)
    n_users, n_items = user_items.shape
    user_factors = _factors(model.userFactors, n_users, model.rank)
    item_factors = _factors(model.itemFactors, n_items, model.rank)
    params = {param.name: value for param, value in estimator.extractParamMap().items()}
    backend.fits.append(
        {"uid": model.uid, "rank": model.rank, "spark_version": spark.version, **params}
    )
    log.info(
        "MLlib ALS (%s): %d x %d matrix, rank %d, %d iterations",
        model.uid, n_users, n_items, model.rank, iterations,
    )  # fmt: skip
    return user_factors, item_factors
