{#
    The raw sources read from Parquet files ("the lake"), registered by
    `dbt run-operation register_lake_sources` (build.register_lake) when var('lake') is set: {"path": the lake folder, "tables":
    ["raw_interactions.interactions", ...]}, each table the Parquet files of the folder
    <path>/<schema>/<table>/ (dbt_project/lake.py writes and lists them). Without the var it does
    nothing: on DuckDB the raw tables are then dlt's own, in the warehouse.
    Spark: an external table over each folder (`create table ... using parquet location`),
    dropped and created again on every run, so a table sees the files of this run only (dropping an
    external table leaves its files). DuckDB: a view over read_parquet of each folder.
#}
{% macro register_lake_sources() -%}
    {%- set lake = var('lake', none) -%}
    {%- if execute and lake -%}
        {%- for table in lake['tables'] -%}
            {%- set schema, identifier = table.split('.') -%}
            {%- set folder = (lake['path'] ~ '/' ~ schema ~ '/' ~ identifier) | replace("'", "''") -%}
            {%- do adapter.dispatch('register_lake_table', 'recomart')(schema, identifier, folder) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{% macro default__register_lake_table(schema, identifier, folder) -%}
    {%- do run_query('create schema if not exists ' ~ adapter.quote(schema)) -%}
    {%- do run_query(
        'create or replace view ' ~ adapter.quote(schema) ~ '.' ~ adapter.quote(identifier)
        ~ " as select * from read_parquet('" ~ folder ~ "/*.parquet')"
    ) -%}
{%- endmacro %}

{% macro spark__register_lake_table(schema, identifier, folder) -%}
    {%- set table = adapter.quote(schema) ~ '.' ~ adapter.quote(identifier) -%}
    {%- do run_query('create database if not exists ' ~ adapter.quote(schema)) -%}
    {%- do run_query('drop table if exists ' ~ table) -%}
    {%- do run_query('create table ' ~ table ~ " using parquet location '" ~ folder ~ "'") -%}
{%- endmacro %}
