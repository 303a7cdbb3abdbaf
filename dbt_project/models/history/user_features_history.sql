-- user_features as of any time: its versions with their validity (macros/feature_history.sql).

{{ feature_history(ref('user_features_versions')) }}
