with

source as (
    select * from {{ source('raw_interactions', 'interactions') }}
),

final as (
    select
        -- ids
        -- a raw row: its values and where it was read (a file may repeat a line; dlt skips a row
        -- only when an earlier load has the same values, so file and line tell repeats apart)
        -- (every part as text: the doubles as DuckDB writes them, on either engine)
        md5(concat_ws(
            '|', cast(user_id as string), cast(item_id as string),
            cast({{ epoch_microseconds(quoted_column('timestamp')) }} as string),
            coalesce({{ double_as_text('rating') }}, ''), coalesce(event_type, ''),
            coalesce({{ double_as_text('quantity') }}, ''),
            coalesce({{ double_as_text('unit_price') }}, ''),
            coalesce({{ double_as_text('value') }}, ''), coalesce(transaction_id, ''),
            source_file, cast(source_line as string)
        )) as interaction_key,
        cast(user_id as string) as user_id,
        cast(item_id as string) as item_id,
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
        cast({{ quoted_column('timestamp') }} as timestamp) as event_at,
        -- when the load that wrote the row started: dlt's load id is its Unix time in seconds
        -- (null if a load id is not a number); converted from epoch microseconds, so no time zone
        -- is involved
        {{ timestamp_from_load_id('_dlt_load_id') }} as loaded_at,

        -- lineage
        source_file,
        source_line,
        _dlt_load_id as load_id
    from source
)

select * from final
