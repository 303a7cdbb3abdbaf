with

source as (
    select * from {{ source('raw_interactions', 'interactions') }}
),

final as (
    select
        -- ids
        interaction_key,
        user_id,
        item_id,

        -- strings
        coalesce(
            nullif(lower(trim(event_type)), ''),
            '{{ var("default_event_type") }}'
        ) as event_type,

        -- numerics
        -- NaN is a missing value, not a rating: it would otherwise count as out of range
        cast(case when isnan(rating) then null else rating end as double) as rating,

        -- booleans
        -- the imputation flag of event_type (policy: docs.md `imputation_policy`)
        coalesce(trim(event_type), '') = '' as is_event_type_imputed,

        -- timestamps
        -- dlt stores the event time as timestamp with time zone; the session time zone is UTC
        -- (profiles.yml), so this plain timestamp is the UTC wall-clock time
        cast("timestamp" as timestamp) as event_at,  -- noqa: RF06

        -- lineage
        source_file,
        source_line,
        _dlt_load_id as load_id
    from source
)

select * from final
