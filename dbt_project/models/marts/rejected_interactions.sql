-- Raw interaction rows within the as_of cutoff that were not accepted, with the reason.

with

validated as (
    select * from {{ ref('int_interactions_validated') }}
),

rejected as (
    select * from validated
    where rejection_reason is not null
),

final as (
    -- column order is the interface order documented in _marts__models.yml
    select
        interaction_key,
        user_id,
        item_id,
        rating,
        event_type,
        event_at,
        source_file,
        source_line,
        rejection_reason,
        load_id,
        duplicate_of_interaction_key,
        combined_into_interaction_key,
        superseded_by_interaction_key
    from rejected
)

select * from final
