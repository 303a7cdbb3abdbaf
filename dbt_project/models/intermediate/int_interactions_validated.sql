-- Applies the as_of cutoff and gives every remaining row its rejection reason (null when clean).
-- Rows after the cutoff are left out here, so they reach neither `interactions` nor
-- `rejected_interactions`: as of the cutoff they have not happened yet.

with

deduplicated as (
    select * from {{ ref('int_interactions_deduplicated') }}
),

products as (
    select * from {{ ref('stg_catalog__products') }}
),

within_cutoff as (
    select * from deduplicated
    where {{ is_within_as_of('event_at') }}
),

joined_to_catalog as (
    select
        within_cutoff.*,
        products.category,
        products.item_id is not null as is_known_item
    from within_cutoff
    left join products
        on within_cutoff.item_id = products.item_id
),

final as (
    select
        -- ids
        interaction_key,
        user_id,
        item_id,
        duplicate_of_interaction_key,
        combined_into_interaction_key,
        superseded_by_interaction_key,
        transaction_id,

        -- strings
        category,
        event_type,
        -- one reason per row, the first that applies in this priority order
        case
            -- the rows of one event that gave way to another (int_interactions_deduplicated)
            when duplicate_of_interaction_key is not null
                then 'duplicate event'
            when combined_into_interaction_key is not null
                then 'combined into one transaction line'
            when superseded_by_interaction_key is not null
                then 'superseded by a later version'
            -- NaN and infinities ("inf", "NaN" or "1e999" in a file types as one; a huge quantity
            -- times a price overflows): no weight, price or value can be computed from them
            when not {{ is_finite('quantity') }}
                then 'quantity is not a finite number'
            when not {{ is_finite('unit_price') }}
                then 'unit_price is not a finite number'
            when not {{ is_finite('value') }}
                then 'value is not a finite number'
            when not {{ is_finite('rating') }}
                then 'rating is not a finite number'
            {% if var('returns') == 'drop' -%}
                when event_type = 'return'
                    then 'return or cancellation'
            {% endif -%}
            {% if var('not_products') | length > 0 -%}
                when item_id in ({{ quoted_list(var('not_products')) }})
                    then 'not a product'
            {% endif -%}
            when
                rating is not null
                and rating not between {{ var('rating_min') }} and {{ var('rating_max') }}
                then 'rating out of range'
            {% if var('rating_step') | float > 0 -%}
                -- on the scale's grid: min, min + step, ..., max (up to float rounding)
                when
                    rating is not null
                    and abs(
                        (rating - {{ var('rating_min') }}) / {{ var('rating_step') }}
                        - round((rating - {{ var('rating_min') }}) / {{ var('rating_step') }})
                    ) > 1e-6
                    then 'rating not on the scale'
            {% endif -%}
            {% if var('unknown_items') == 'reject' -%}
                when not is_known_item
                    then 'unknown item_id'
            {% endif -%}
            -- LT05 is off on the next line: the lint templater renders var() as a long stand-in
            when event_type not in ('{{ var("event_types") | join("', '") }}')  -- noqa: LT05
                then 'unknown event_type'
            -- in the future when it was loaded: a file cannot hold an event that had not happened
            -- yet when dlt read it (a clock or time zone error at the source). Judged against the
            -- row's own load time (from its load_id), not the build's clock, so the same data and
            -- vars build the same marts on any day; such a row stays rejected after its time passes
            when event_at > loaded_at
                then 'event in the future'
        end as rejection_reason,

        -- numerics
        rating,
        quantity,
        unit_price,
        value,

        -- booleans
        is_known_item,
        is_event_type_imputed,

        -- timestamps
        event_at,
        loaded_at,

        -- lineage
        source_file,
        source_line,
        load_id
    from joined_to_catalog
)

select * from final
