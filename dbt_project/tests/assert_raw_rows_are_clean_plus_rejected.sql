-- Every raw interaction row within the as_of cutoff must end up in exactly one of the marts
-- `interactions` (accepted) or `rejected_interactions` (with a reason). A failure means rows were
-- lost or counted twice between the raw table written by dlt and the marts (a join that drops or
-- fans out rows, a filter, a deduplication bug). Raw rows after the cutoff (event_at > as_of) are
-- in neither mart by design: they have not happened yet as of the cutoff. Without a cutoff,
-- every raw row counts. Returns one row with the three counts when they do not add up.

with

raw_interactions as (
    select * from {{ source('raw_interactions', 'interactions') }}
),

interactions as (
    select * from {{ ref('interactions') }}
),

rejected_interactions as (
    select * from {{ ref('rejected_interactions') }}
),

raw_count as (
    select count(*) as raw_rows
    from raw_interactions
    -- the same cast as stg_interactions__events and the same cutoff macro as the models
    where {{ is_within_as_of('cast(' ~ quoted_column('timestamp') ~ ' as timestamp)') }}
),

clean_count as (
    select count(*) as clean_rows
    from interactions
),

rejected_count as (
    select count(*) as rejected_rows
    from rejected_interactions
),

final as (
    select
        raw_count.raw_rows,
        clean_count.clean_rows,
        rejected_count.rejected_rows
    from raw_count
    cross join clean_count
    cross join rejected_count
    where raw_count.raw_rows != clean_count.clean_rows + rejected_count.rejected_rows
)

select * from final
