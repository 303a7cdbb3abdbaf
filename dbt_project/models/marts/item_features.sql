-- Per-item features: every catalog product, interacted with or not, and (unknown_items = keep) every
-- item of the clean interactions the catalog lacks, measured at the shared reference time. Rating
-- statistics use observed ratings only (never imputed ones).

with

products as (
    select * from {{ ref('stg_catalog__products') }}
),

-- a catalog price that is NaN or infinite (a file's "inf", "NaN" or "1e999" types as one) is
-- not a price: left out (null) like a missing one, and out of the catalog's price statistics
finite_prices as (
    select
        item_id,
        price
    from products
    where {{ is_finite('price') }}
),

interactions as (
    select * from {{ ref('interactions') }}
),

reference_time as (
    select * from {{ ref('int_feature_reference_time') }}
),

categories as (
    select distinct category
    from products
    where category is not null
),

category_codes as (
    select
        category,
        cast(dense_rank() over (order by category) as integer) as category_code
    from categories
),

catalog_price_stats as (
    select
        avg(price) as price_mean,
        stddev_pop(price) as price_std
    from finite_prices
),

interactions_with_age as (
    select
        interactions.*,
        {{ days_between('interactions.event_at', 'reference_time.features_as_of') }} as age_days
    from interactions
    cross join reference_time
),

item_aggregates as (
    select
        item_id,
        count(*) as interaction_count,
        count(distinct user_id) as user_count,
        count(rating) filter (where not is_rating_imputed) as rating_count,
        avg(rating) filter (where not is_rating_imputed) as avg_rating,
        stddev_samp(rating) filter (where not is_rating_imputed) as rating_std,
        -- each interaction weighs 1 at the reference time and half as much per half-life before it
        sum({{ decay_weight('age_days') }}) as popularity_score,
        max(event_at) as last_interaction_at
    from interactions_with_age
    group by item_id
),

all_items as (
    select item_id from products
    union
    select item_id from item_aggregates
),

final as (
    -- column order is the interface order documented in _marts__models.yml
    select
        all_items.item_id,
        products.title,
        products.category,
        category_codes.category_code,
        finite_prices.price,
        -- z-score over the catalog; null when every price is the same (no spread to scale by)
        round(
            (finite_prices.price - catalog_price_stats.price_mean)
            / nullif(catalog_price_stats.price_std, 0),
            6
        ) as price_normalised,
        coalesce(item_aggregates.interaction_count, 0) as interaction_count,
        coalesce(item_aggregates.user_count, 0) as user_count,
        coalesce(item_aggregates.rating_count, 0) as rating_count,
        round(item_aggregates.avg_rating, 6) as avg_rating,
        round(item_aggregates.rating_std, 6) as rating_std,
        round(coalesce(item_aggregates.popularity_score, 0.0), 6) as popularity_score,
        item_aggregates.last_interaction_at,
        reference_time.features_as_of
    from all_items
    left join products
        on all_items.item_id = products.item_id
    left join finite_prices
        on all_items.item_id = finite_prices.item_id
    left join category_codes
        on products.category = category_codes.category
    left join item_aggregates
        on all_items.item_id = item_aggregates.item_id
    cross join catalog_price_stats
    cross join reference_time
)

select * from final
