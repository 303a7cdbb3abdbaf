"""Shop ids (strings) <-> int64 codes: the numerical core works on codes, people on shop ids.

A Vocabulary holds one kind of id (users or items) as two aligned arrays: `codes`, int64,
strictly increasing and non-negative, and `names`, the shop id of each code as str.

- Built from shop ids (`from_ids`, or models_ml.data.read_marts whose SQL ranks them the same
  way) it is dense: the names sorted, the code of a name its position (0 .. n-1).
- Built from integer codes (`identity`: frames that already hold integers, as in tests and the
  MovieLens benchmark) the name of code c is str(c). So integer ids from old files simply
  become their decimal text, and "007" and "7" stay different ids.

encode: shop ids -> codes, UNKNOWN (-1) for ids not in the vocabulary (a hash lookup on whole
arrays). decode: codes -> shop ids (object array of str), None for UNKNOWN / padding (-1) and
for codes not in the vocabulary. to_arrays / from_arrays: the vocabulary as unicode and int64
arrays, to save inside a model's npz.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from models_ml.arrays import unique_sorted

UNKNOWN = -1


def _as_text(ids: Iterable | np.ndarray | pd.Series) -> np.ndarray:
    """Shop ids as an object array; integers become their decimal text."""
    values = ids.to_numpy() if isinstance(ids, pd.Series | pd.Index) else np.asarray(ids)
    if values.dtype.kind in "iu":
        values = values.astype(str)
    return values.astype(object, copy=False)


class Vocabulary:
    """The ids of one kind (users or items) and their int64 codes. Read-only once built."""

    def __init__(self, names: Iterable[str] | np.ndarray, codes: np.ndarray | None = None):
        """names: the shop ids (str, unique) in code order; codes: their codes (default
        0 .. n-1), strictly increasing and non-negative."""
        self.names = _as_text(names)
        n = len(self.names)
        self.codes = (
            np.arange(n, dtype=np.int64) if codes is None else np.asarray(codes, dtype=np.int64)
        )
        if self.names.ndim != 1 or self.codes.shape != (n,):
            raise ValueError("a vocabulary needs one name per code")
        if n and (self.codes[0] < 0 or (np.diff(self.codes) <= 0).any()):
            raise ValueError("vocabulary codes must be non-negative and strictly increasing")
        if n and pd.api.types.infer_dtype(self.names, skipna=False) != "string":
            raise ValueError("vocabulary names must be strings (None and NaN are not ids)")
        self._index = pd.Index(self.names, dtype=object)
        if not self._index.is_unique:
            raise ValueError("vocabulary names must be unique")
        self._dense = n == 0 or (self.codes[0] == 0 and self.codes[-1] == n - 1)

    @classmethod
    def from_ids(cls, ids: Iterable | np.ndarray | pd.Series) -> Vocabulary:
        """The sorted unique shop ids (duplicates allowed in ids) with codes 0 .. n-1."""
        return cls(np.unique(_as_text(ids).astype(str)))

    @classmethod
    def identity(cls, codes: Iterable[int] | np.ndarray) -> Vocabulary:
        """The unique integer codes given (non-negative), each named str(code)."""
        unique = unique_sorted(np.asarray(codes, dtype=np.int64))
        return cls(unique.astype(str), unique)

    def __len__(self) -> int:
        return len(self.codes)

    def __repr__(self) -> str:
        kind = "dense" if self._dense else "sparse"
        return f"Vocabulary({len(self)} ids, {kind} codes)"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocabulary)
            and np.array_equal(self.codes, other.codes)
            and np.array_equal(self.names, other.names)
        )

    def encode(self, ids: Iterable | np.ndarray | pd.Series) -> np.ndarray:
        """int64 code of each shop id, UNKNOWN (-1) for ids not in the vocabulary."""
        # an object Index as target: pandas neither infers nor converts a string dtype
        positions = self._index.get_indexer(pd.Index(_as_text(ids), dtype=object))
        if self._dense:
            return positions.astype(np.int64, copy=False)
        return np.where(positions >= 0, self.codes[positions], UNKNOWN)

    def code(self, shop_id: str) -> int:
        """The code of one shop id (an int counts as its decimal text), UNKNOWN if not in the
        vocabulary: encode for one id, without the cost of an array lookup (~1 us)."""
        if isinstance(shop_id, int | np.integer):
            shop_id = str(shop_id)
        try:
            position = self._index.get_loc(shop_id)
        except (KeyError, TypeError, pd.errors.InvalidIndexError):
            return UNKNOWN
        return int(self.codes[position])

    def positions(self, codes: Iterable[int] | np.ndarray) -> np.ndarray:
        """Position of each code in `codes`/`names`, -1 where a code is not in the vocabulary."""
        codes = np.asarray(codes, dtype=np.int64)
        if self._dense:
            return np.where((codes >= 0) & (codes < len(self)), codes, -1)
        pos = np.searchsorted(self.codes, codes)
        inside = pos < len(self)
        found = np.zeros(codes.shape, dtype=bool)
        found[inside] = self.codes[pos[inside]] == codes[inside]
        return np.where(found, pos, -1)

    def decode(self, codes: Iterable[int] | np.ndarray) -> np.ndarray:
        """Shop id (str) of each code, same shape, dtype object; None where a code is UNKNOWN,
        padding or not in the vocabulary."""
        pos = self.positions(codes)
        out = np.full(pos.shape, None, dtype=object)
        found = pos >= 0
        out[found] = self.names[pos[found]]
        return out

    def fingerprint(self) -> str:
        """sha256 (hex) of the codes and names: equal for equal vocabularies."""
        digest = hashlib.sha256(self.codes.tobytes())
        names = pd.Series(self.names, dtype=object)
        digest.update(pd.util.hash_pandas_object(names, index=False).to_numpy().tobytes())
        return digest.hexdigest()

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """{<prefix>_names: unicode array, <prefix>_codes: int64 array}, for np.savez."""
        return {f"{prefix}_names": self.names.astype(str), f"{prefix}_codes": self.codes}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> Vocabulary:
        """The vocabulary that to_arrays(prefix) wrote (arrays: e.g. an opened npz)."""
        return cls(arrays[f"{prefix}_names"], arrays[f"{prefix}_codes"])
