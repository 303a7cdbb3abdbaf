-- Per-user features over clean interactions, measured at the shared reference time.
-- Rating statistics use observed ratings only (never imputed ones).

with

interactions as (
    select * from {{ ref('interactions') }}
),

reference_time as (
    select * from {{ ref('int_feature_reference_time') }}
),

category_interaction_counts as (
    select
        user_id,
        category,
        count(*) as category_interaction_count
    from interactions
    where category is not null
    group by user_id, category
),

ranked_categories as (
    select
        user_id,
        category,
        -- most interactions first; a tie goes to the alphabetically first category
        row_number() over (
            partition by user_id
            order by category_interaction_count desc, category asc
        ) as category_rank
    from category_interaction_counts
),

favourite_categories as (
    select
        user_id,
        category as favourite_category
    from ranked_categories
    where category_rank = 1
),

user_aggregates as (
    select
        user_id,
        count(*) as interaction_count,
        count(rating) filter (where not is_rating_imputed) as rated_count,
        avg(rating) filter (where not is_rating_imputed) as avg_rating,
        stddev_samp(rating) filter (where not is_rating_imputed) as rating_std,
        min(rating) filter (where not is_rating_imputed) as min_rating,
        max(rating) filter (where not is_rating_imputed) as max_rating,
        count(distinct category) as category_count,
        count(distinct event_date) as active_days,
        min(event_at) as first_interaction_at,
        max(event_at) as last_interaction_at
    from interactions
    group by user_id
),

final as (
    -- column order is the interface order documented in _marts__models.yml
    select
        user_aggregates.user_id,
        favourite_categories.favourite_category,
        user_aggregates.interaction_count,
        user_aggregates.rated_count,
        round(user_aggregates.avg_rating, 6) as avg_rating,
        round(user_aggregates.rating_std, 6) as rating_std,
        user_aggregates.min_rating,
        user_aggregates.max_rating,
        user_aggregates.category_count,
        user_aggregates.active_days,
        -- whole days: complete 24-hour periods, not calendar-day boundaries crossed
        cast(
            floor(
                {{ days_between('user_aggregates.last_interaction_at', 'reference_time.features_as_of') }}
            ) as integer
        ) as days_since_last_interaction,
        user_aggregates.first_interaction_at,
        user_aggregates.last_interaction_at,
        reference_time.features_as_of
    from user_aggregates
    left join favourite_categories
        on user_aggregates.user_id = favourite_categories.user_id
    cross join reference_time
)

select * from final
