"""The feature store over the dbt marts."""

from recomart.features.store import FeatureStore, FeatureStoreError

__all__ = ["FeatureStore", "FeatureStoreError"]
