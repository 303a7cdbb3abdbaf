{#-
    dlt creates a table only once it has rows for it: on a clean data set the quarantine table may
    not exist yet. The model then yields no rows (same columns and types) instead of failing.
-#}
{%- set quarantine_source = source('raw_interactions', 'interactions_quarantine') -%}
{%- set quarantine_exists = true -%}
{%- if execute -%}
    {%- set quarantine_exists = adapter.get_relation(
        database=quarantine_source.database,
        schema=quarantine_source.schema,
        identifier=quarantine_source.identifier,
    ) is not none -%}
{%- endif -%}

with

source as (
    {% if quarantine_exists %}
        select
            source_file,
            source_line,
            raw_line,
            reason,
            _dlt_load_id
        from {{ quarantine_source }}
    {% else %}
        select
            cast(null as string) as source_file,
            cast(null as bigint) as source_line,
            cast(null as string) as raw_line,
            cast(null as string) as reason,
            cast(null as string) as _dlt_load_id
        where false
    {% endif %}
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
