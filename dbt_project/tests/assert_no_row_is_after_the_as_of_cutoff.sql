-- With the as_of var set, no mart may hold anything that happened after it: no interaction, no
-- rejected row, no feature computed from a later event, no reference time other than as_of.
-- A failure means the point-in-time cutoff leaks future data into training (a model that reads
-- the source or staging directly, or a filter lost). Without as_of there is nothing to check.
-- Returns one row per offending mart with the number of offending rows.

with

interactions as (
    select * from {{ ref('interactions') }}
),

rejected_interactions as (
    select * from {{ ref('rejected_interactions') }}
),

user_features as (
    select * from {{ ref('user_features') }}
),

item_features as (
    select * from {{ ref('item_features') }}
),

offending_counts as (
    select
        'interactions' as mart_name,
        count(*) as offending_rows
    from interactions
    where not {{ is_within_as_of('event_at') }}

    union all

    select
        'rejected_interactions' as mart_name,
        count(*) as offending_rows
    from rejected_interactions
    where not {{ is_within_as_of('event_at') }}

    union all

    select
        'user_features' as mart_name,
        count(*) as offending_rows
    from user_features
    where
        not {{ is_within_as_of('last_interaction_at') }}
        -- without a cutoff this compares features_as_of with itself: never true
        or features_as_of != coalesce({{ as_of_timestamp() }}, features_as_of)

    union all

    select
        'item_features' as mart_name,
        count(*) as offending_rows
    from item_features
    where
        -- a product nobody interacted with has no last_interaction_at: nothing to check
        not coalesce({{ is_within_as_of('last_interaction_at') }}, true)
        or features_as_of != coalesce({{ as_of_timestamp() }}, features_as_of)
),

final as (
    select * from offending_counts
    where offending_rows > 0
)

select * from final
