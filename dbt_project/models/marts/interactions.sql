-- Clean interactions, with missing ratings imputed: the item's median observed rating among clean
-- rows, else the global median observed rating. When no rating was observed at all (an implicit
-- feedback log: events only), ratings stay null. is_rating_imputed marks the filled ones, so
-- features can leave them out.

with

validated as (
    select * from {{ ref('int_interactions_validated') }}
),

clean_interactions as (
    select * from validated
    where rejection_reason is null
),

item_median_ratings as (
    select
        item_id,
        median(rating) as item_median_rating
    from clean_interactions
    where rating is not null
    group by item_id
),

global_median_rating as (
    select median(rating) as global_median_rating
    from clean_interactions
    where rating is not null
),

imputed as (
    select
        clean_interactions.*,
        coalesce(
            clean_interactions.rating,
            item_median_ratings.item_median_rating,
            global_median_rating.global_median_rating
        ) as imputed_rating,
        clean_interactions.rating is null
        and global_median_rating.global_median_rating is not null as is_rating_imputed
    from clean_interactions
    left join item_median_ratings
        on clean_interactions.item_id = item_median_ratings.item_id
    cross join global_median_rating
),

final as (
    -- column order is the interface order documented in _marts__models.yml
    select
        interaction_key,
        user_id,
        item_id,
        category,
        event_type,
        cast(imputed_rating as double) as rating,
        is_rating_imputed,
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
