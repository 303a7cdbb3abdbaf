"""Whole-array helpers shared by the model code.

np.unique(a) without return_* options takes numpy 2.4's hash-based path, which on a million
int64 keys is about 40 times slower than sorting (0.88 s against 0.02 s, measured here);
unique_sorted sorts and drops the repeats instead.
"""

from __future__ import annotations

import numpy as np


def unique_sorted(values: np.ndarray) -> np.ndarray:
    """The distinct values of a numeric array, sorted (np.unique's result, by a sort)."""
    ordered = np.sort(np.asarray(values).ravel())
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]
