"""Vocabulary: the shop's string ids and their int64 codes (models_ml.ids)."""

import numpy as np
import pandas as pd
import pytest

from models_ml.ids import UNKNOWN, Vocabulary


def test_codes_are_positions_of_the_sorted_unique_ids() -> None:
    vocab = Vocabulary.from_ids(["85123A", "85123", "10002", "85123", "007", "7", "B-1"])
    # text order, character by character: digits before letters, "007" before "10002" before "7"
    assert vocab.names.tolist() == ["007", "10002", "7", "85123", "85123A", "B-1"]
    assert vocab.codes.tolist() == [0, 1, 2, 3, 4, 5] and len(vocab) == 6
    assert vocab.encode(["85123A", "85123", "10002", "B-1"]).tolist() == [4, 3, 1, 5]


def test_007_and_7_are_different_ids() -> None:
    vocab = Vocabulary.from_ids(["7", "007", "07"])
    codes = vocab.encode(["007", "7", "07"])
    assert codes.tolist() == [0, 2, 1] and len(set(codes.tolist())) == 3
    assert vocab.decode(codes).tolist() == ["007", "7", "07"]


def test_round_trip_and_unknown_ids() -> None:
    ids = np.array([f"user-{i:05d}" for i in range(0, 2000, 3)], dtype=object)
    vocab = Vocabulary.from_ids(ids[::-1])
    rng = np.random.default_rng(0)
    sample = rng.choice(ids, 500)
    codes = vocab.encode(sample)
    assert codes.dtype == np.int64 and (codes >= 0).all()
    assert vocab.decode(codes).tolist() == sample.tolist()
    # unknown ids: -1, whatever their shape or their likeness to a known id
    unknown = vocab.encode(["user-00001", "USER-00000", "", "user-00000 ", None])
    assert unknown.tolist() == [UNKNOWN] * 5
    # decoding: -1 (unknown, padding) and codes outside the vocabulary give None
    decoded = vocab.decode(np.array([[0, -1], [len(vocab), 1]]))
    assert decoded.shape == (2, 2) and decoded.dtype == object
    assert decoded.tolist() == [["user-00000", None], [None, "user-00003"]]
    # a pandas Series in, as the marts give them
    assert vocab.encode(pd.Series(sample)).tolist() == codes.tolist()


def test_code_of_one_id_agrees_with_encode() -> None:
    vocab = Vocabulary.from_ids(["85123A", "85123", "007", "7"])
    for shop_id in ("85123A", "85123", "007", "7", "85123a", "", "0007"):
        assert vocab.code(shop_id) == vocab.encode([shop_id])[0]
    assert vocab.code("7") != vocab.code("007") and vocab.code("nope") == UNKNOWN
    assert vocab.code(7) == vocab.code("7") and vocab.code(None) == UNKNOWN
    sparse = Vocabulary.identity([5, 50])
    assert (sparse.code("50"), sparse.code("5"), sparse.code("6")) == (50, 5, UNKNOWN)


def test_integer_ids_are_their_decimal_text() -> None:
    vocab = Vocabulary.from_ids(np.array([10, 7, 2, 7]))
    assert vocab.names.tolist() == ["10", "2", "7"]  # text order
    assert vocab.encode([7, "7", "007"]).tolist() == [2, 2, UNKNOWN]


def test_identity_vocabulary_names_each_code_by_itself() -> None:
    vocab = Vocabulary.identity([42, 7, 1000, 7])
    assert vocab.codes.tolist() == [7, 42, 1000]
    assert vocab.names.tolist() == ["7", "42", "1000"]
    assert vocab.encode(["1000", "7", "42", "007", "8"]).tolist() == [1000, 7, 42, -1, -1]
    assert vocab.decode([42, 8, -1, 1000]).tolist() == ["42", None, None, "1000"]
    assert vocab.positions([1000, 7, 8]).tolist() == [2, 0, -1]


def test_saved_as_unicode_arrays_in_an_npz(tmp_path) -> None:
    users = Vocabulary.from_ids(["007", "7", "ü-ñ", "a" * 256])
    items = Vocabulary.identity([3, 1, 2])
    np.savez(tmp_path / "ids.npz", **users.to_arrays("user"), **items.to_arrays("item"))
    with np.load(tmp_path / "ids.npz", allow_pickle=False) as arrays:
        assert arrays["user_names"].dtype.kind == "U" and arrays["item_codes"].dtype == np.int64
        loaded_users = Vocabulary.from_arrays(arrays, "user")
        loaded_items = Vocabulary.from_arrays(arrays, "item")
    assert loaded_users == users and loaded_items == items and loaded_users != items
    assert loaded_users.encode(["ü-ñ", "7"]).tolist() == users.encode(["ü-ñ", "7"]).tolist()
    assert users.fingerprint() == loaded_users.fingerprint() != items.fingerprint()


def test_bad_vocabularies_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(["a", "b", "a"])
    with pytest.raises(ValueError, match="increasing"):
        Vocabulary(["a", "b"], [1, 0])
    with pytest.raises(ValueError, match="non-negative"):
        Vocabulary.identity([-1, 3])
    with pytest.raises(ValueError, match="strings"):
        Vocabulary(["a", None])
