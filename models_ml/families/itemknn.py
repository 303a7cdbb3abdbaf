"""The itemknn family: implicit's item-item neighbours (cosine or BM25), the K best per item;
W sparse."""

from __future__ import annotations

import warnings
from types import MappingProxyType
from typing import Literal

import numpy as np
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
from implicit.utils import ParameterWarning
from pydantic import BaseModel, ConfigDict, Field
from scipy.sparse import csr_matrix

from models_ml.families.cost import RATE, Shape, weight_scoring
from models_ml.families.ease import empty_factors
from models_ml.families.kinds import ItemItemModel
from models_ml.recommender import Scorer


class ItemKNNSettings(BaseModel):
    """[train.itemknn]: the similarity and the neighbours kept per item."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    similarity: Literal["cosine", "bm25"] = "cosine"
    neighbours: int = Field(100, ge=1, le=10_000)


def knn_weights(x: csr_matrix, settings: ItemKNNSettings) -> csr_matrix:
    """The K nearest items of each item (implicit, cosine or BM25), as a CSR W (float32)."""
    similarity = settings.similarity
    positive = csr_matrix(x.multiply(x > 0), dtype=np.float64)
    k = settings.neighbours
    model = (
        CosineRecommender(K=k, num_threads=1)
        if similarity == "cosine"
        else BM25Recommender(K=k, num_threads=1)
    )
    with warnings.catch_warnings():  # implicit converts its own normalised COO to CSR
        warnings.filterwarnings("ignore", category=ParameterWarning)
        model.fit(positive, show_progress=False)
    return csr_matrix(model.similarity, dtype=np.float32)


class ItemKNN(ItemItemModel):
    """implicit's item-item neighbours: a sparse W, no factors."""

    name = "itemknn"
    title = "item-kNN (implicit)"
    description = "collaborative filtering (item-kNN (implicit))"
    Settings = ItemKNNSettings
    flat_keys = MappingProxyType({"knn_similarity": "similarity", "knn_neighbours": "neighbours"})

    def fit_scorer(self, user_items: csr_matrix, popularity: np.ndarray) -> Scorer:
        alpha = self.common.weighting.alpha
        return empty_factors(self.name, user_items, knn_weights(user_items / alpha, self.settings))

    @classmethod
    def cost_terms(cls, shape: Shape, settings: ItemKNNSettings, shared: bool) -> tuple[float, ...]:
        return shape.cooccurrences / RATE["knn"], weight_scoring(shape, settings.neighbours)
