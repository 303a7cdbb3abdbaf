-- Versions of user_features, appended build after build (macros/feature_history.sql): never
-- rebuilt, not even by --full-refresh. What is compared and the key: _history__models.yml.

{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        full_refresh=false,
        on_schema_change='append_new_columns'
    )
}}

{{ feature_versions(ref('user_features')) }}
