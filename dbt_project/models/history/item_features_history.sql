-- item_features as of any time: its versions with their validity (macros/feature_history.sql).

{{ feature_history(ref('item_features_versions')) }}
