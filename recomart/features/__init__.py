"""The feature store over the dbt marts (recomart.features.store.FeatureStore).

Modules: store (the FeatureStore API), manifest (dbt-built feature sets from manifest.json),
registry (the store's own DuckDB file: registrations and saved versions; the read connection that
attaches it beside the warehouse), retrieval (current, versioned and point-in-time values, feature
views), training (the training set and item attributes models_ml reads), lineage, sets (the
FeatureSet record), errors (FeatureStoreError and the name checks).
"""

from recomart.features.errors import FeatureStoreError
from recomart.features.sets import FeatureSet
from recomart.features.store import FeatureStore
from recomart.features.training import TrainingSet

__all__ = ["FeatureSet", "FeatureStore", "FeatureStoreError", "TrainingSet"]
