-- The current versions of the feature history (is_current in user_features_history and
-- item_features_history) must be the feature marts as this build left them: one current version
-- per user and per product, with the same values in every compared column (every column but the
-- untracked ones the versions model's config.meta lists). A failure means reading a feature "as
-- of now" from the history would not give the mart (a versions model not built after the marts, a
-- column not compared, a key that changed). Returns the ids whose current version differs or is
-- missing.
-- Tagged `history`, like the history models: a build that leaves them out leaves this test out
-- too (--exclude tag:history).

{{ config(tags=['history']) }}

with

user_differences as (
    {{ current_version_differences(
        ref('user_features'), ref('user_features_history'), 'user_features_versions'
    ) }}
),

item_differences as (
    {{ current_version_differences(
        ref('item_features'), ref('item_features_history'), 'item_features_versions'
    ) }}
),

final as (
    select * from user_differences
    union all
    select * from item_differences
)

select * from final
