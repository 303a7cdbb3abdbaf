with

source as (
    select * from {{ source('raw_interactions', 'interactions_quarantine') }}
),

final as (
    select
        -- ids
        _dlt_load_id as load_id,

        -- strings
        source_file,
        raw_line,
        reason,

        -- numerics
        source_line
    from source
)

select * from final
