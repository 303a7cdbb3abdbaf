with

source as (
    select * from {{ source('raw_interactions', 'interactions') }}
),

final as (
    select
        -- ids
        -- a raw row: its values and where it was read (a file may repeat a line; dlt skips a row
        -- only when an earlier load has the same values, so file and line tell repeats apart)
        md5(concat_ws(
            '|', user_id, item_id, epoch_us("timestamp"),  -- noqa: RF06
            coalesce(cast(rating as varchar), ''), coalesce(event_type, ''),
            coalesce(cast(quantity as varchar), ''), coalesce(cast(unit_price as varchar), ''),
            coalesce(cast(value as varchar), ''), coalesce(transaction_id, ''),
            source_file, source_line
        )) as interaction_key,
        cast(user_id as varchar) as user_id,
        cast(item_id as varchar) as item_id,
        transaction_id,

        -- strings
        coalesce(
            nullif(lower(trim(event_type)), ''),
            '{{ var("default_event_type") }}'
        ) as event_type,

        -- numerics
        -- NaN is a missing value, not a rating: it would otherwise count as out of range
        cast(case when isnan(rating) then null else rating end as double) as rating,
        quantity,
        unit_price,
        -- the line's value: as given, else quantity times unit price
        coalesce(value, quantity * unit_price) as value,  -- noqa: RF04

        -- booleans
        -- the imputation flag of event_type (policy: docs.md `imputation_policy`)
        coalesce(trim(event_type), '') = '' as is_event_type_imputed,

        -- timestamps
        -- dlt stores the event time as a plain UTC timestamp (a time zone offset in the file was
        -- applied at ingest); the cast also takes a timestamp with time zone, in the session's
        -- UTC (profiles.yml)
        cast("timestamp" as timestamp) as event_at,  -- noqa: RF06
        -- when the load that wrote the row started: dlt's load id is its Unix time in seconds
        -- (null if a load id is not a number); converted from epoch microseconds, so no time zone
        -- is involved
        make_timestamp(cast(try_cast(_dlt_load_id as double) * 1000000 as bigint)) as loaded_at,

        -- lineage
        source_file,
        source_line,
        _dlt_load_id as load_id
    from source
)

select * from final
