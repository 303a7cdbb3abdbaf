-- Per user-item pair features over clean interactions, measured at the shared reference time:
-- how the pair's ratings deviate from the user's and the item's means (observed ratings only),
-- when the user interacts with the item (hour of day, day of week) and how much the user favours
-- the item's category.

with

interactions as (
    select * from {{ ref('interactions') }}
),

reference_time as (
    select * from {{ ref('int_feature_reference_time') }}
),

observed_ratings as (
    select * from interactions
    where not is_rating_imputed
),

user_mean_ratings as (
    select
        user_id,
        avg(rating) as user_mean_rating
    from observed_ratings
    group by user_id
),

item_mean_ratings as (
    select
        item_id,
        avg(rating) as item_mean_rating
    from observed_ratings
    group by item_id
),

user_totals as (
    select
        user_id,
        count(*) as user_interaction_count
    from interactions
    group by user_id
),

user_category_counts as (
    select
        user_id,
        category,
        count(*) as user_category_interaction_count
    from interactions
    where category is not null
    group by user_id, category
),

category_shares as (
    -- share of all clean interactions (of every user, with or without a category) in each category
    select
        category,
        count(*) / sum(count(*)) over () as category_share
    from interactions
    group by category
),

user_hour_counts as (
    select
        user_id,
        event_hour,
        count(*) as user_hour_interaction_count
    from interactions
    group by user_id, event_hour
),

user_day_counts as (
    select
        user_id,
        event_day_of_week,
        count(*) as user_day_interaction_count
    from interactions
    group by user_id, event_day_of_week
),

ranked_pair_hours as (
    -- the pair's most frequent hour; a tie goes to the earliest hour
    select
        user_id,
        item_id,
        event_hour,
        row_number() over (
            partition by user_id, item_id
            order by count(*) desc, event_hour asc
        ) as hour_rank
    from interactions
    group by user_id, item_id, event_hour
),

pair_hours as (
    select
        user_id,
        item_id,
        event_hour as preferred_hour
    from ranked_pair_hours
    where hour_rank = 1
),

ranked_pair_days as (
    -- the pair's most frequent ISO day of week; a tie goes to the lowest (Monday first)
    select
        user_id,
        item_id,
        event_day_of_week,
        row_number() over (
            partition by user_id, item_id
            order by count(*) desc, event_day_of_week asc
        ) as day_rank
    from interactions
    group by user_id, item_id, event_day_of_week
),

pair_days as (
    select
        user_id,
        item_id,
        event_day_of_week as preferred_day_of_week
    from ranked_pair_days
    where day_rank = 1
),

pair_aggregates as (
    select
        user_id,
        item_id,
        -- an item has one category (the catalog's); any_value just carries it through
        any_value(category) as category,
        count(*) as interaction_count,
        count(rating) filter (where not is_rating_imputed) as rated_count,
        avg(rating) filter (where not is_rating_imputed) as avg_rating,
        min(event_at) as first_interaction_at,
        max(event_at) as last_interaction_at
    from interactions
    group by user_id, item_id
),

final as (
    -- column order is the interface order documented in _marts__models.yml
    select
        pair_aggregates.user_id,
        pair_aggregates.item_id,
        pair_aggregates.category,
        pair_aggregates.interaction_count,
        pair_aggregates.rated_count,
        round(pair_aggregates.avg_rating, 6) as avg_rating,
        round(pair_aggregates.avg_rating - user_mean_ratings.user_mean_rating, 6) as rating_minus_user_mean,
        round(pair_aggregates.avg_rating - item_mean_ratings.item_mean_rating, 6) as rating_minus_item_mean,
        pair_hours.preferred_hour,
        round(
            user_hour_counts.user_hour_interaction_count / user_totals.user_interaction_count, 6
        ) as preferred_hour_share,
        pair_days.preferred_day_of_week,
        round(
            user_day_counts.user_day_interaction_count / user_totals.user_interaction_count, 6
        ) as preferred_day_of_week_share,
        round(
            coalesce(user_category_counts.user_category_interaction_count, 0)
            / user_totals.user_interaction_count,
            6
        ) as category_share,
        round(
            coalesce(user_category_counts.user_category_interaction_count, 0)
            / user_totals.user_interaction_count
            / category_shares.category_share,
            6
        ) as category_affinity,
        cast(
            floor(
                {{ days_between('pair_aggregates.last_interaction_at', 'reference_time.features_as_of') }}
            ) as integer
        ) as days_since_last_interaction,
        pair_aggregates.first_interaction_at,
        pair_aggregates.last_interaction_at,
        reference_time.features_as_of
    from pair_aggregates
    inner join user_totals
        on pair_aggregates.user_id = user_totals.user_id
    inner join pair_hours
        on
            pair_aggregates.user_id = pair_hours.user_id
            and pair_aggregates.item_id = pair_hours.item_id
    inner join pair_days
        on
            pair_aggregates.user_id = pair_days.user_id
            and pair_aggregates.item_id = pair_days.item_id
    inner join user_hour_counts
        on
            pair_hours.user_id = user_hour_counts.user_id
            and pair_hours.preferred_hour = user_hour_counts.event_hour
    inner join user_day_counts
        on
            pair_days.user_id = user_day_counts.user_id
            and pair_days.preferred_day_of_week = user_day_counts.event_day_of_week
    left join user_mean_ratings
        on pair_aggregates.user_id = user_mean_ratings.user_id
    left join item_mean_ratings
        on pair_aggregates.item_id = item_mean_ratings.item_id
    left join user_category_counts
        on
            pair_aggregates.user_id = user_category_counts.user_id
            and pair_aggregates.category = user_category_counts.category
    left join category_shares
        on pair_aggregates.category = category_shares.category
    cross join reference_time
)

select * from final
