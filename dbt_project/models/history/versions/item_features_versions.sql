-- Versions of item_features, appended build after build (macros/feature_history.sql): never
-- rebuilt, not even by --full-refresh (dbt_project.yml, models/history/versions/). What is compared
-- and the key: ../_history__models.yml.

{{ feature_versions(ref('item_features')) }}
