-- The current versions of the feature snapshots (dbt_valid_to null) must be the feature marts as
-- this build left them: one current version per user and per product, with the same values in
-- every column the snapshot checks. A failure means reading a feature "as of now" from the
-- snapshots would not give the mart (a snapshot not run after the marts, a check column missing,
-- a key that changed). Returns the ids whose current version differs or is missing.
-- Tagged `snapshots`: a build that excludes the snapshots excludes this test too
-- (--exclude resource_type:snapshot tag:snapshots).

{{ config(tags=['snapshots']) }}

with

user_features as (
    select * from {{ ref('user_features') }}
),

user_versions as (
    select * from {{ ref('user_features_snapshot') }}
    where dbt_valid_to is null
),

item_features as (
    select * from {{ ref('item_features') }}
),

item_versions as (
    select * from {{ ref('item_features_snapshot') }}
    where dbt_valid_to is null
),

user_differences as (
    select
        'user_features' as mart_name,
        coalesce(user_features.user_id, user_versions.user_id) as entity_id
    from user_features
    full outer join user_versions
        on user_features.user_id = user_versions.user_id
    where
        user_features.user_id is null
        or user_versions.user_id is null
        or user_features.favourite_category is distinct from user_versions.favourite_category
        or user_features.interaction_count is distinct from user_versions.interaction_count
        or user_features.rated_count is distinct from user_versions.rated_count
        or user_features.avg_rating is distinct from user_versions.avg_rating
        or user_features.rating_std is distinct from user_versions.rating_std
        or user_features.min_rating is distinct from user_versions.min_rating
        or user_features.max_rating is distinct from user_versions.max_rating
        or user_features.category_count is distinct from user_versions.category_count
        or user_features.active_days is distinct from user_versions.active_days
        or user_features.first_interaction_at is distinct from user_versions.first_interaction_at
        or user_features.last_interaction_at is distinct from user_versions.last_interaction_at
),

item_differences as (
    select
        'item_features' as mart_name,
        coalesce(item_features.item_id, item_versions.item_id) as entity_id
    from item_features
    full outer join item_versions
        on item_features.item_id = item_versions.item_id
    where
        item_features.item_id is null
        or item_versions.item_id is null
        or item_features.title is distinct from item_versions.title
        or item_features.category is distinct from item_versions.category
        or item_features.category_code is distinct from item_versions.category_code
        or item_features.price is distinct from item_versions.price
        or item_features.price_normalised is distinct from item_versions.price_normalised
        or item_features.interaction_count is distinct from item_versions.interaction_count
        or item_features.user_count is distinct from item_versions.user_count
        or item_features.rating_count is distinct from item_versions.rating_count
        or item_features.avg_rating is distinct from item_versions.avg_rating
        or item_features.rating_std is distinct from item_versions.rating_std
        or item_features.last_interaction_at is distinct from item_versions.last_interaction_at
),

final as (
    select * from user_differences
    union all
    select * from item_differences
)

select * from final
