{#
    The raw sources read from Parquet files ("the lake"), registered by
    `dbt run-operation register_lake_sources` (build.register_lake) when var('lake') is set:
    {"path": the lake folder, "tables": {"raw_interactions.interactions":
    "raw_interactions/interactions", ...}}, each table the Parquet files of its folder under <path>
    (dlt's filesystem destination writes them, a file per load: dlt_pipelines/lake_pipeline.py;
    dbt_project/lake.py lists them; the warehouse's _dlt_loads is in folder ingest_loads). Without the
    var it does nothing: on DuckDB the raw tables are then dlt's own, in the warehouse.
    Spark: an external table over each folder (`create table ... using parquet location`),
    dropped and created again on every run, so a table sees the files there now (dropping an
    external table leaves its files). DuckDB: a view over read_parquet of each folder. Both take
    the union of the files' columns (a column a later load added is null in earlier files).
#}
{% macro register_lake_sources() -%}
    {%- set lake = var('lake', none) -%}
    {%- if execute and lake -%}
        {%- for table, table_folder in lake['tables'].items() -%}
            {%- set schema, identifier = table.split('.') -%}
            {%- set folder = (lake['path'] ~ '/' ~ table_folder) | replace("'", "''") -%}
            {%- do adapter.dispatch('register_lake_table', 'recomart')(schema, identifier, folder) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{% macro default__register_lake_table(schema, identifier, folder) -%}
    {%- do run_query('create schema if not exists ' ~ adapter.quote(schema)) -%}
    {%- do run_query(
        'create or replace view ' ~ adapter.quote(schema) ~ '.' ~ adapter.quote(identifier)
        ~ " as select * from read_parquet('" ~ folder ~ "/*.parquet', union_by_name = true)"
    ) -%}
{%- endmacro %}

{% macro spark__register_lake_table(schema, identifier, folder) -%}
    {%- set table = adapter.quote(schema) ~ '.' ~ adapter.quote(identifier) -%}
    {%- do run_query('create database if not exists ' ~ adapter.quote(schema)) -%}
    {%- do run_query('drop table if exists ' ~ table) -%}
    {%- do run_query(
        'create table ' ~ table ~ " using parquet options (mergeSchema 'true') location '"
        ~ folder ~ "'"
    ) -%}
{%- endmacro %}

{#
    Tables the pipeline writes itself as Parquet on Spark (the training's batch recommendations),
    registered where dbt and Spark SQL find them: `dbt run-operation register_parquet_tables --args
    '{"tables": {"recommendations.user_recommendations": "<absolute folder>"}}'`
    (build.register_tables), the same external table as a lake table's.
#}
{% macro register_parquet_tables(tables) -%}
    {%- if execute -%}
        {%- for table, folder in tables.items() -%}
            {%- set schema, identifier = table.split('.') -%}
            {%- do adapter.dispatch('register_lake_table', 'recomart')(
                schema, identifier, folder | replace("'", "''")
            ) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
