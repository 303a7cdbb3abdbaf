-- A row that lines of one transaction were combined into (int_interactions_deduplicated,
-- line_count > 1) must stand for exactly those lines: line_count is itself plus the rows whose
-- combined_into_interaction_key names it, and its quantity and value are the sums of theirs as
-- staging had them (rounded to 6 decimals; null when a line's is null). A failure means the
-- combination lost a line, counted a copy or a line of another transaction or load, or changed
-- the units a shop sold. Returns the offending rows with both sides.

with

events as (
    select * from {{ ref('stg_interactions__events') }}
),

deduplicated as (
    select * from {{ ref('int_interactions_deduplicated') }}
),

transaction_lines as (
    -- each line of a combined transaction, under the key of the row it was combined into
    select
        coalesce(deduplicated.combined_into_interaction_key, deduplicated.interaction_key) as kept_key,
        events.quantity,
        events.value
    from deduplicated
    inner join events
        on deduplicated.interaction_key = events.interaction_key
    where
        deduplicated.combined_into_interaction_key is not null
        or deduplicated.line_count > 1
),

line_sums as (
    select
        kept_key,
        count(*) as line_count,
        case when count(quantity) = count(*) then round(sum(quantity), 6) end as quantity,
        case when count(value) = count(*) then round(sum(value), 6) end as line_value
    from transaction_lines
    group by kept_key
),

final as (
    select
        line_sums.kept_key,
        deduplicated.line_count,
        line_sums.line_count as lines_found,
        deduplicated.quantity,
        line_sums.quantity as summed_quantity,
        deduplicated.value as event_value,
        line_sums.line_value as summed_value
    from line_sums
    left join deduplicated
        on line_sums.kept_key = deduplicated.interaction_key
    where
        deduplicated.line_count is distinct from line_sums.line_count
        or deduplicated.quantity is distinct from line_sums.quantity
        or deduplicated.value is distinct from line_sums.line_value
)

select * from final
