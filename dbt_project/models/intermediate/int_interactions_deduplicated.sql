-- One row per raw row, each either kept or pointing at the row it gave way to. An event is
-- (user_id, item_id, event_type, event_at); the rows of one event are settled in three steps:
-- 1. True duplicates: rows equal on every stored value (nulls equal), the same line twice in a file
--    or in two files of one load. One is kept; the others are `duplicate_of_interaction_key` it.
-- 2. Lines of one transaction (var transaction_lines = 'sum'): the remaining rows of the event with
--    the same non-null transaction_id in the same load, an invoice that lists a product on several
--    lines. They are one event: the row with the highest source_line carries the sum of their
--    quantities and of their values (a sum is null when a line's is), and unit_price = value /
--    quantity (its own when the summed quantity is 0); the others are `combined_into_interaction_key`
--    it. With 'latest' they are versions, as in step 3.
-- 3. Versions: what is left of the event (a corrected row in a later load, a log without transaction
--    ids) keeps one row, the latest load, then the highest source_line; the others are
--    `superseded_by_interaction_key` it.
-- Every ordering ends with source_file and interaction_key, so the choice is deterministic. The
-- steps run on the rows of events that have more than one row; an event of one row is kept as is.

{%- set rule = transaction_lines_rule() %}

with

events as (
    select * from {{ ref('stg_interactions__events') }}
),

repeated_events as (
    -- the events with more than one row: only their rows go through the three steps (a window
    -- over every row of a large log costs seconds; most events have one row)
    select
        user_id,
        item_id,
        event_type,
        event_at
    from events
    group by user_id, item_id, event_type, event_at
    having count(*) > 1
),

sized_events as (
    select
        events.*,
        repeated_events.user_id is not null as is_repeated_event
    from events
    left join repeated_events
        on
            events.user_id = repeated_events.user_id
            and events.item_id = repeated_events.item_id
            and events.event_type = repeated_events.event_type
            and events.event_at = repeated_events.event_at
),

copies as (
    -- step 1: partitions group nulls together, so equal means null-safe equal
    select
        *,
        row_number() over same_values as copy_rank,
        first_value(interaction_key) over same_values as kept_copy_key
    from sized_events
    where is_repeated_event
    window same_values as (
        partition by
            user_id, item_id, event_type, event_at, rating, quantity, unit_price, value,
            transaction_id
        order by load_id desc, source_line desc, source_file desc, interaction_key desc
    )
),

transaction_lines as (
    -- step 2, over every row of step 1 (no join back): a copy of step 1 and a line of no
    -- transaction (every line, with 'latest') are groups of their own
    select
        *,
        row_number() over line_order as line_rank,
        first_value(interaction_key) over line_order as kept_line_key,
        count(*) over one_transaction as transaction_line_count,
        sum(quantity) over one_transaction as summed_quantity,
        count(quantity) over one_transaction as quantity_count,
        sum(value) over one_transaction as summed_value,
        count(value) over one_transaction as value_count
    from copies
    window
        one_transaction as (
            partition by
                user_id, item_id, event_type, event_at, load_id,
                case when copy_rank > 1 then interaction_key end,
                {% if rule == 'sum' -%}
                    transaction_id, case when transaction_id is null then interaction_key end
                {%- else -%}
                    interaction_key
                {%- endif %}
        ),
        -- the partition of one_transaction, spelled out: Spark's window clause cannot extend one
        line_order as (
            partition by
                user_id, item_id, event_type, event_at, load_id,
                case when copy_rank > 1 then interaction_key end,
                {% if rule == 'sum' -%}
                    transaction_id, case when transaction_id is null then interaction_key end
                {%- else -%}
                    interaction_key
                {%- endif %}
            order by source_line desc, source_file desc, interaction_key desc
        )
),

transaction_events as (
    -- the row that lines were combined into carries their sums (null when a line's is null)
    select
        *,
        line_rank = 1 and transaction_line_count > 1 as is_combined_event,
        case
            when quantity_count = transaction_line_count then round(summed_quantity, 6)
        end as event_quantity,
        case when value_count = transaction_line_count then round(summed_value, 6) end as event_value
    from transaction_lines
),

versions as (
    -- step 3: the rows that gave way in steps 1 and 2 are groups of their own
    select
        *,
        row_number() over event_versions as version_rank,
        first_value(interaction_key) over event_versions as kept_version_key
    from transaction_events
    window event_versions as (
        partition by
            user_id, item_id, event_type, event_at,
            case when copy_rank > 1 or line_rank > 1 then interaction_key end
        order by load_id desc, source_line desc, source_file desc, interaction_key desc
    )
),

settled as (
    select
        -- ids
        interaction_key,
        user_id,
        item_id,
        case when copy_rank > 1 then kept_copy_key end as duplicate_of_interaction_key,
        case when line_rank > 1 then kept_line_key end as combined_into_interaction_key,
        case when version_rank > 1 then kept_version_key end as superseded_by_interaction_key,
        transaction_id,

        -- strings
        event_type,

        -- numerics
        rating,
        case when is_combined_event then event_quantity else quantity end as quantity,
        case
            when is_combined_event
                then coalesce(round(event_value / nullif(event_quantity, 0), 6), unit_price)
            else unit_price
        end as unit_price,
        case when is_combined_event then event_value else value end as value,  -- noqa: RF04
        -- the lines this row stands for: more than 1 on a row that lines were combined into
        case when is_combined_event then transaction_line_count else 1 end as line_count,

        -- booleans
        is_event_type_imputed,

        -- timestamps
        event_at,
        loaded_at,

        -- lineage
        source_file,
        source_line,
        load_id
    from versions
),

single_rows as (
    -- an event of one row: kept as it is
    select
        interaction_key,
        user_id,
        item_id,
        cast(null as string) as duplicate_of_interaction_key,
        cast(null as string) as combined_into_interaction_key,
        cast(null as string) as superseded_by_interaction_key,
        transaction_id,
        event_type,
        rating,
        quantity,
        unit_price,
        value,  -- noqa: RF04
        1 as line_count,
        is_event_type_imputed,
        event_at,
        loaded_at,
        source_file,
        source_line,
        load_id
    from sized_events
    where not is_repeated_event
),

final as (
    select * from single_rows
    union all
    select * from settled
)

select * from final
