-- The current versions of the feature snapshots (dbt_valid_to null) must be the feature marts as
-- this build left them: one current version per user and per product, with the same values in
-- every column the snapshot checks (its check_cols, read from the snapshot's config: every column
-- but the ones that move with the reference time alone). A failure means reading a feature "as of
-- now" from the snapshots would not give the mart (a snapshot not run after the marts, a column
-- not compared, a key that changed). Returns the ids whose current version differs or is missing.
-- Tagged `snapshots`: a build that excludes the snapshots excludes this test too
-- (--exclude resource_type:snapshot tag:snapshots).

{{ config(tags=['snapshots']) }}

with

user_differences as (
    {{ current_version_differences(
        'user_features_snapshot', ref('user_features'), ref('user_features_snapshot'), 'user_id'
    ) }}
),

item_differences as (
    {{ current_version_differences(
        'item_features_snapshot', ref('item_features'), ref('item_features_snapshot'), 'item_id'
    ) }}
),

final as (
    select * from user_differences
    union all
    select * from item_differences
)

select * from final
