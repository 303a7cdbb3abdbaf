"""The feature store over the dbt marts (feature_store.store.FeatureStore).

Modules: store (the FeatureStore API), manifest (dbt-built feature sets from manifest.json),
registry (the store's own DuckDB file: registrations and saved versions; the read connection that
attaches it beside the warehouse), retrieval (current, versioned and point-in-time values, feature
views), training (the training set and item attributes models_ml reads), lineage, sets (the
FeatureSet record), errors (FeatureStoreError and the name checks).
"""

from feature_store.errors import FeatureStoreError
from feature_store.sets import FeatureSet
from feature_store.store import FeatureStore
from feature_store.training import TrainingSet

__all__ = ["FeatureSet", "FeatureStore", "FeatureStoreError", "TrainingSet"]
