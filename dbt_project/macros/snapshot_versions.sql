{#
    A query returning (mart_name, entity_id) for every entity whose current snapshot version
    (dbt_valid_to null) differs from its row in the mart, or exists on one side only, compared on
    the columns the snapshot checks: its own check_cols setting, read from the graph, applied to
    the mart's columns (so a column added to the mart is compared as soon as it exists).
#}
{% macro current_version_differences(snapshot_name, mart, versions, key) -%}
    {%- set check_cols = ['*'] -%}
    {%- set columns = [key] -%}
    {%- if execute -%}
        {%- set snapshot = graph.nodes.values()
            | selectattr('resource_type', 'equalto', 'snapshot')
            | selectattr('name', 'equalto', snapshot_name)
            | first -%}
        {%- if snapshot.config.check_cols != 'all' -%}
            {%- set check_cols = snapshot.config.check_cols -%}
        {%- endif -%}
        {%- set columns = adapter.get_columns_in_relation(mart) | map(attribute='name') | list -%}
    {%- endif -%}
    {%- set mart_columns = [] -%}
    {%- for column in columns -%}
        {%- do mart_columns.append(adapter.quote(column)) -%}
    {%- endfor -%}
    with

    mart_values as (
        select {{ check_cols | join(', ') }}
        from (select {{ mart_columns | join(', ') }} from {{ mart }}) as mart_rows
    ),

    version_values as (
        select {{ check_cols | join(', ') }}
        from (
            select {{ mart_columns | join(', ') }} from {{ versions }}
            where dbt_valid_to is null
        ) as current_versions
    ),

    differences as (
        (select * from mart_values except select * from version_values)
        union all
        (select * from version_values except select * from mart_values)
    )

    select distinct
        '{{ mart.identifier }}' as mart_name,
        cast({{ key }} as varchar) as entity_id
    from differences
{%- endmacro %}
