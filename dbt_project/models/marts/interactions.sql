-- Clean interactions, with missing ratings imputed from what was known at the time of the event,
-- so that no rating of a later (held-out) period leaks into an earlier row: the median of the
-- item's observed ratings among clean rows strictly before the row's event_at, else the median of
-- all observed ratings strictly before it, else the middle of the rating scale. When no rating was
-- observed at all (an implicit-feedback log: events only), ratings stay null. is_rating_imputed
-- marks the filled ones, so features can leave them out.

with

validated as (
    select * from {{ ref('int_interactions_validated') }}
),

clean_interactions as (
    select * from validated
    where rejection_reason is null
),

observed_ratings as (
    select
        item_id,
        event_at,
        rating
    from clean_interactions
    where rating is not null
),

running_medians as (
    -- the median of the observed ratings up to and including event_at (a range frame: every row
    -- at the same instant gets the same value, so ties need no tie-break). A growing frame is
    -- computed incrementally; a frame that ends "1 preceding" is not, and took 20 s on 100k rows.
    select
        item_id,
        event_at,
        median(rating) over (
            partition by item_id
            order by event_at
            range between unbounded preceding and current row
        ) as item_median_rating,
        median(rating) over (
            order by event_at
            range between unbounded preceding and current row
        ) as global_median_rating
    from observed_ratings
),

item_medians as (
    select distinct
        item_id,
        event_at,
        item_median_rating
    from running_medians
),

global_medians as (
    select distinct
        event_at,
        global_median_rating
    from running_medians
),

log_ratings as (
    -- a log with no rating anywhere is implicit feedback: nothing to impute
    select count(*) > 0 as has_ratings
    from observed_ratings
),

imputed as (
    -- each row takes the running medians of the last instant strictly before its event_at
    select
        clean_interactions.*,
        coalesce(
            clean_interactions.rating,
            item_medians.item_median_rating,
            global_medians.global_median_rating,
            -- nothing observed before the row: the middle of the scale
            ({{ var('rating_min') }} + {{ var('rating_max') }}) / 2.0
        ) as filled_rating,
        clean_interactions.rating is null as is_rating_missing,
        log_ratings.has_ratings
    from clean_interactions
    asof left join item_medians
        on
            clean_interactions.item_id = item_medians.item_id
            and clean_interactions.event_at > item_medians.event_at
    asof left join global_medians
        on clean_interactions.event_at > global_medians.event_at
    cross join log_ratings
),

final as (
    -- column order is the interface order documented in _marts__models.yml
    select
        interaction_key,
        user_id,
        item_id,
        category,
        event_type,
        cast(case when has_ratings then filled_rating end as double) as rating,
        is_rating_missing and has_ratings as is_rating_imputed,
        quantity,
        value,
        event_at,
        cast(event_at as date) as event_date,
        cast(hour(event_at) as integer) as event_hour,
        cast(isodow(event_at) as integer) as event_day_of_week,
        load_id
    from imputed
)

select * from final
