"""Adding a model family is one class and one line in the registry (models_ml.families): a toy
family, W = boost x I (a user's own items, boosted), registered for the test with registered(),
is configured by its own table [train.toy], validated by its own Settings, and fits, recommends,
explains, saves, loads and is served through the shared base like the real families."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, Field
from scipy.sparse import csr_matrix, identity
from synthetic_marts import planted_interactions

from models_ml import families, package
from models_ml.families.kinds import ItemItemModel
from models_ml.recommender import Scorer
from recomart_core.schema import USER
from recomart_core.settings import ConfigError, parse
from serving.snapshot import ModelInfo, ServingModel


class ToySettings(BaseModel):
    """[train.toy]"""

    model_config = ConfigDict(extra="forbid", frozen=True)

    boost: float = Field(1.0, gt=0)


class Toy(ItemItemModel):
    """W = boost x I: each item adds `boost` times its own confidence to itself only."""

    name = "toy"
    title = "toy (W = boost x I)"
    description = "the toy family: the user's own items, boosted"
    similarity_text = "none: an item is close to itself only"
    Settings = ToySettings

    def fit_scorer(self, user_items: csr_matrix, popularity: np.ndarray) -> Scorer:
        n_users, n_items = user_items.shape
        weights = csr_matrix(identity(n_items, dtype=np.float32) * np.float32(self.settings.boost))
        return Scorer(
            self.name,
            np.zeros((n_users, 0), dtype=np.float32),
            np.zeros((n_items, 0), dtype=np.float32),
            weights,
        )


TOML = """
[train]
family = "toy"

[train.toy]
boost = {boost}

[train.cold_start]
few_interactions = 0
cold_items = false
"""


def config(boost: str):
    return parse(tomllib.loads(TOML.format(boost=boost))).train


@pytest.fixture(scope="module")
def rows():
    interactions, _ = planted_interactions(
        n_users=60, n_items=30, n_groups=3, n_interactions=900, seed=11
    )
    return interactions


def test_a_registered_toy_family_fits_serves_saves_and_loads(rows, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"\[train\] family: must be one of .*got 'toy'"):
        families.check(config("2"))  # not registered: an unknown family
    with families.registered(Toy):
        assert "toy" in families.names() and "toy" in families.learned()
        train = config("2")
        families.check(train)
        model = families.build(train)
        assert isinstance(model, Toy) and model.settings.boost == 2.0
        model.fit(rows)

        # its scores are 2 x the user's own confidences: with known items allowed, the first
        # item is the user's strongest, scored 2 x its confidence, on the shared "model" path
        user_code = int(np.unique(rows[USER])[0])
        user = str(user_code)
        row = model.user_items[0]
        strongest = int(model.item_ids[row.indices[np.argmax(row.data)]])
        ids, scores = model.recommend_ids([user], 3, exclude_known=False)
        assert ids[0][0] == str(strongest)
        assert scores[0][0] == pytest.approx(2 * row.data.max(), rel=1e-6)
        assert model.user_path(user) == "model"
        # excluding known items leaves only zero scores: ties by the lower item code
        ids, scores = model.recommend_ids([user], 3)
        assert set(ids[0]).isdisjoint({str(model.item_ids[i]) for i in row.indices})
        assert scores[0].tolist() == [0.0, 0.0, 0.0]

        # similar items: the item's row of W holds only itself, which is never listed
        assert model.similar_items(str(strongest), 5) == []
        why = model.explain(user, str(strongest))
        assert why["path"] == "model"
        assert why["contributions"][0]["item_id"] == str(strongest)
        assert why["contributions"][0]["contribution"] == pytest.approx(2 * row.data.max())
        assert why["score"] == pytest.approx(2 * row.data.max(), rel=1e-6)

        # saved (format 6: family, common, settings) and loaded: the same family and lists
        directory = package.save_recommender(model, tmp_path / "toy")
        loaded = package.load_recommender(directory)
        assert isinstance(loaded, Toy) and loaded.params() == model.params()
        assert loaded.params()["settings"] == {"boost": 2.0}
        users = model.users.decode(model.user_ids)
        for exclude in (True, False):
            for got, expected in zip(
                loaded.recommend_ids(users, 5, exclude),
                model.recommend_ids(users, 5, exclude),
                strict=True,
            ):
                np.testing.assert_array_equal(got, expected)

        # served: the strategy is the shared "model", the family beside it
        info = ModelInfo("m", "1", "champion", None, None, None, None)
        served = ServingModel(loaded, None, info, max_k=10)
        answer = served.recommend(user, 3, exclude_known=False)
        assert (answer["strategy"], answer["family"], answer["cold_start"]) == (
            "model", "toy", False,
        )  # fmt: skip
        assert answer["strategy_description"] == Toy.description
        assert answer["items"][0]["item_id"] == str(strongest)
        assert served.similarity_text == Toy.similarity_text

        # a wrong value of its own table fails at start, naming the table and the key
        with pytest.raises(ConfigError, match=r"\[train\.toy\] boost: Input should be greater"):
            families.check(config("-1"))
        with pytest.raises(ConfigError, match=r"\[train\.toy\] has no setting 'boots'"):
            families.check(parse({"train": {"family": "toy", "toy": {"boots": 2}}}).train)
    assert "toy" not in families.names()  # registered() removes it again


def test_a_family_cannot_register_twice_or_take_a_shared_key() -> None:
    with pytest.raises(ValueError, match="already registered"), families.registered(families.ALS):
        pass

    class Clash(Toy):
        name = "clash"

        class Settings(BaseModel):
            alpha: float = 1.0  # a shared [train] key

    with pytest.raises(ValueError, match=r"shared \[train\] keys"), families.registered(Clash):
        pass
    assert families.names() == ("als", "bpr", "ease", "itemknn", "hybrid", "popularity")
