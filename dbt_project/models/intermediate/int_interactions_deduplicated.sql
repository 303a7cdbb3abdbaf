-- The same event (same user_id, item_id, event_type and event_at) may arrive more than once with
-- different values: a corrected row in a later file or load, or a repeated line. One row per event is
-- kept (the latest load, then the highest source_line); the others are flagged as duplicates of it.

with

events as (
    select * from {{ ref('stg_interactions__events') }}
),

ranked as (
    select
        *,
        row_number() over versions as version_rank,
        first_value(interaction_key) over versions as kept_interaction_key
    from events
    window versions as (
        partition by user_id, item_id, event_type, event_at
        order by
            load_id desc,
            source_line desc,
            -- only ties left: same load and line in two files; keep the choice deterministic
            source_file desc,
            interaction_key desc
    )
),

final as (
    select
        -- ids
        interaction_key,
        user_id,
        item_id,
        case
            when version_rank > 1 then kept_interaction_key
        end as duplicate_of_interaction_key,
        transaction_id,

        -- strings
        event_type,

        -- numerics
        rating,
        quantity,
        unit_price,
        value,

        -- booleans
        version_rank > 1 as is_duplicate,
        is_event_type_imputed,

        -- timestamps
        event_at,
        loaded_at,

        -- lineage
        source_file,
        source_line,
        load_id
    from ranked
)

select * from final
