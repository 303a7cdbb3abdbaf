{#
    The lowercase column names of a relation that may not exist yet (a raw table dlt has not
    created, a catalog that lacks some columns), or an empty list when it does not exist. Empty at
    parse time too: models branch on it to read what is there and fill the rest with nulls.
#}
{% macro existing_columns(relation) -%}
    {%- if not execute -%}
        {{- return([]) -}}
    {%- endif -%}
    {%- set found = adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier
    ) -%}
    {%- if found is none -%}
        {{- return([]) -}}
    {%- endif -%}
    {{- return(adapter.get_columns_in_relation(found) | map(attribute='name') | map('lower') | list) -}}
{%- endmacro %}


{# `column` of the source when `columns` has it, else a typed null named like it. #}
{% macro column_or_null(column, columns, data_type) -%}
    {%- if column | lower in columns -%}
        cast({{ adapter.quote(column) }} as {{ data_type }})
    {%- else -%}
        cast(null as {{ data_type }})
    {%- endif -%}
{%- endmacro %}
