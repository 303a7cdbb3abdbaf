{#
    History of a feature mart as data: an append-only "versions" model and a view over it.

    Portable SQL on purpose (the same models must run on dbt-spark with file_format parquet, where
    snapshots and `merge` do not exist): dbt's own cross-database macros (hash, concat,
    type_string), row_number() / lead() windows, left joins, casts; no QUALIFY, no `* exclude`,
    no `::`, no current_timestamp (the build's time is rendered into the SQL as a literal).

    What a versions model records is said once, in its YAML (`config.meta`, read here from the
    graph): `unique_key`, `untracked_columns` (the columns that move with the reference time
    alone: kept in every version, never compared) and `seed_from_snapshot` (the dbt snapshot of
    the code before, read once by the first build).
#}

{# The config.meta of the versions model `versions_name` (from the graph; execute time only). #}
{% macro history_spec(versions_name) -%}
    {%- set node = graph.nodes.values()
        | selectattr('resource_type', 'equalto', 'model')
        | selectattr('name', 'equalto', versions_name)
        | first -%}
    {%- if node is not defined or node is none -%}
        {{ exceptions.raise_compiler_error("no model named " ~ versions_name ~ " holds a feature history") }}
    {%- endif -%}
    {%- set meta = node.config.meta or {} -%}
    {%- for required in ['unique_key', 'untracked_columns'] -%}
        {%- if required not in meta -%}
            {{ exceptions.raise_compiler_error(
                versions_name ~ ": config.meta." ~ required ~ " is missing (models/history/_history__models.yml)"
            ) }}
        {%- endif -%}
    {%- endfor -%}
    {{- return(meta) -}}
{%- endmacro %}


{#
    The columns of `mart` that a version compares: every column but the spec's untracked ones,
    sorted by name (so reordering the mart's columns is not a change). dbt Column objects.
#}
{% macro tracked_columns(mart, spec) -%}
    {%- set untracked = spec.untracked_columns | map('lower') | list -%}
    {%- set tracked = [] -%}
    {%- for column in adapter.get_columns_in_relation(mart) | sort(attribute='name') -%}
        {%- if column.name | lower not in untracked -%}
            {%- do tracked.append(column) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(tracked) -}}
{%- endmacro %}


{#
    SQL text of one value as it enters a row hash: never null ('<null>'); a double as DuckDB writes
    it on both engines (double_as_text, macros/cross_engine.sql: Spark's own text is `1.0E20` where
    DuckDB's is `1e+20`), so a row hashes the same on DuckDB and Spark.
#}
{% macro hash_part(expression, column) -%}
    {%- if column.is_float() -%}
        coalesce({{ double_as_text(expression) }}, '<null>')
    {%- else -%}
        coalesce(cast({{ expression }} as {{ dbt.type_string() }}), '<null>')
    {%- endif -%}
{%- endmacro %}


{# md5 of the tracked columns of a row (qualified by `prefix`), '|'-separated. #}
{% macro row_hash(tracked, prefix) -%}
    {%- set parts = [] -%}
    {%- for column in tracked -%}
        {%- if not loop.first -%}{%- do parts.append("'|'") -%}{%- endif -%}
        {%- do parts.append(hash_part(prefix ~ '.' ~ adapter.quote(column.name), column)) -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(parts)) }}
{%- endmacro %}


{#
    The valid_from of this build's versions: var('history_as_of') when set (tests, a replay), else
    dbt's run_started_at (UTC), rendered as a timestamp literal. Never the database's clock.
#}
{% macro history_valid_from() -%}
    {%- set override = var('history_as_of', none) -%}
    {%- if override is not none and (override | string | trim | lower) not in ('', 'none', 'null') -%}
        {%- set text = override | string | trim -%}
        {%- set iso = '^\\d{4}-\\d\\d-\\d\\d([ T]\\d\\d:\\d\\d(:\\d\\d(\\.\\d{1,6})?)?)?(Z|[+-]\\d\\d:?\\d\\d)?$' -%}
        {%- if not modules.re.match(iso, text) -%}
            {{ exceptions.raise_compiler_error(
                "var history_as_of: " ~ text ~ " is not an ISO time such as 2026-10-01T12:00:00"
            ) }}
        {%- endif -%}
        {%- set parsed = modules.datetime.datetime.fromisoformat(text.replace('Z', '+00:00')) -%}
        {%- if parsed.tzinfo is not none -%}
            {%- set parsed = parsed.astimezone(modules.pytz.utc).replace(tzinfo=none) -%}
        {%- endif -%}
    {%- else -%}
        {%- set parsed = run_started_at -%}
    {%- endif -%}
    cast('{{ parsed.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}


{#
    Fails the build when `relation` already holds a time (one of `time_columns`) at or after this
    build's valid_from (a clock that went back, or a history_as_of in the past): history only
    moves forward.
#}
{% macro check_history_moves_forward(relation, time_columns, valid_from) -%}
    {%- set conditions = [] -%}
    {%- for column in time_columns -%}
        {%- do conditions.append(column ~ " >= " ~ valid_from) -%}
    {%- endfor -%}
    {%- set later = run_query(
        "select count(*) as later_rows from " ~ relation ~ " where " ~ conditions | join(" or ")
    ).columns[0].values()[0] -%}
    {%- if later > 0 -%}
        {{ exceptions.raise_compiler_error(
            relation ~ " holds " ~ later ~ " version(s) from " ~ valid_from ~ " or later: a build's"
            ~ " valid_from must be after every recorded time (check var history_as_of or the clock)"
        ) }}
    {%- endif -%}
{%- endmacro %}


{#
    The select list of a version read from `source` (a relation alias): the mart's columns, its
    row_hash, is_deleted false and `valid_from` (a SQL expression).
#}
{% macro version_columns(columns, source, valid_from) -%}
        {%- for column in columns %}
        {{ source }}.{{ adapter.quote(column.name) }},
        {%- endfor %}
        {{ source }}.row_hash,
        false as is_deleted,
        {{ valid_from }} as valid_from
{%- endmacro %}


{#
    The select list of a tombstone of the key read from `source`: the key, every other column a
    typed null, row_hash null, is_deleted true and `valid_from` (a SQL expression).
#}
{% macro tombstone_columns(columns, key, source, valid_from) -%}
        {%- for column in columns %}
        {% if column.name | lower == key | lower -%}
            {{ source }}.{{ adapter.quote(column.name) }}
        {%- else -%}
            cast(null as {{ column.dtype }})
        {%- endif %} as {{ adapter.quote(column.name) }},
        {%- endfor %}
        cast(null as {{ dbt.type_string() }}) as row_hash,
        true as is_deleted,
        {{ valid_from }} as valid_from
{%- endmacro %}


{#
    The versions of `mart` recorded so far, from the dbt snapshot of the code before (the first
    build only): every snapshot row a version from its dbt_valid_from; a version closed with no
    successor (its key left the mart) also gives a tombstone at its dbt_valid_to. Columns the
    snapshot lacks are null; its own columns (dbt_scd_id, dbt_updated_at) are dropped.
#}
{% macro seeded_versions_ctes(snapshot, columns, tracked, key) -%}
    {%- set present = adapter.get_columns_in_relation(snapshot) | map(attribute='name') | map('lower') | list -%}
snapshot_rows as (
    select
        {%- for column in columns %}
        {% if column.name | lower in present -%}
            cast({{ adapter.quote(column.name) }} as {{ column.dtype }})
        {%- else -%}
            cast(null as {{ column.dtype }})
        {%- endif %} as {{ adapter.quote(column.name) }},
        {%- endfor %}
        cast(dbt_valid_from as timestamp) as snapshot_valid_from,
        cast(dbt_valid_to as timestamp) as snapshot_valid_to
    from {{ snapshot }}
),

snapshot_versions as (
    select
        snapshot_rows.*,
        {{ row_hash(tracked, 'snapshot_rows') }} as row_hash
    from snapshot_rows
),

seeded as (
    select
        {{- version_columns(columns, 'snapshot_versions', 'snapshot_versions.snapshot_valid_from') }}
    from snapshot_versions

    union all

    select
        {{- tombstone_columns(columns, key, 'closed', 'closed.snapshot_valid_to') }}
    from snapshot_rows as closed
    left join snapshot_rows as successor
        on
            closed.{{ adapter.quote(key) }} = successor.{{ adapter.quote(key) }}
            and closed.snapshot_valid_to = successor.snapshot_valid_from
    where closed.snapshot_valid_to is not null and successor.{{ adapter.quote(key) }} is null
),
{%- endmacro %}


{#
    The SQL of `<mart>_versions`, an append-only incremental model: one row per version of an
    entity of `mart`. A build appends
    - a version (is_deleted false, every mart column, row_hash) for each key whose row_hash (md5
      of the tracked columns) differs from its latest version's, or that has none, or whose latest
      version is a tombstone (a re-appearance);
    - a tombstone (is_deleted true, columns null but the key) for each key whose latest version
      is not a tombstone and that left the mart;
    all with valid_from = history_valid_from(). The first build (no table yet) also writes what
    came before: the rows of the spec's seed_from_snapshot when that table exists.
#}
{% macro feature_versions(mart) -%}
    {%- if not execute -%}
        select 1 as parse_time_placeholder
    {%- else -%}
    {%- set spec = history_spec(model.name) -%}
    {%- set key = spec.unique_key -%}
    {%- set columns = adapter.get_columns_in_relation(mart) -%}
    {%- set tracked = tracked_columns(mart, spec) -%}
    {%- set valid_from = history_valid_from() -%}
    {%- set incremental = is_incremental() -%}
    {%- set snapshot = none -%}
    {%- if incremental -%}
        {%- do check_history_moves_forward(this, ['valid_from'], valid_from) -%}
    {%- elif spec.seed_from_snapshot -%}
        {%- set snapshot_schema, snapshot_table = spec.seed_from_snapshot.split('.') -%}
        {%- set snapshot = adapter.get_relation(
            database=this.database, schema=snapshot_schema, identifier=snapshot_table
        ) -%}
        {%- if snapshot is not none -%}
            {%- do check_history_moves_forward(snapshot, ['dbt_valid_from', 'dbt_valid_to'], valid_from) -%}
        {%- endif -%}
    {%- endif -%}
    {%- set has_previous = incremental or snapshot is not none -%}
with

{% if snapshot is not none -%}
{{ seeded_versions_ctes(snapshot, columns, tracked, key) }}
{%- endif %}

mart_rows as (
    select
        {%- for column in columns %}
        mart.{{ adapter.quote(column.name) }},
        {%- endfor %}
        {{ row_hash(tracked, 'mart') }} as row_hash
    from {{ mart }} as mart
),

{% if has_previous -%}
previous_versions as (
    select
        {{ adapter.quote(key) }},
        row_hash,
        is_deleted,
        row_number() over (
            partition by {{ adapter.quote(key) }} order by valid_from desc
        ) as recency
    from {{ this if incremental else 'seeded' }}
),

latest_versions as (
    select
        {{ adapter.quote(key) }},
        row_hash,
        is_deleted
    from previous_versions
    where recency = 1
),

changed as (
    select
        {{- version_columns(columns, 'mart_rows', valid_from) }}
    from mart_rows
    left join latest_versions
        on mart_rows.{{ adapter.quote(key) }} = latest_versions.{{ adapter.quote(key) }}
    where
        latest_versions.{{ adapter.quote(key) }} is null
        or latest_versions.is_deleted
        or latest_versions.row_hash <> mart_rows.row_hash
),

tombstones as (
    select
        {{- tombstone_columns(columns, key, 'latest_versions', valid_from) }}
    from latest_versions
    left join mart_rows
        on latest_versions.{{ adapter.quote(key) }} = mart_rows.{{ adapter.quote(key) }}
    where mart_rows.{{ adapter.quote(key) }} is null and not latest_versions.is_deleted
),

final as (
    {% if snapshot is not none -%}
    select * from seeded
    union all
    {% endif -%}
    select * from changed
    union all
    select * from tombstones
)
{%- else -%}
final as (
    select
        {{- version_columns(columns, 'mart_rows', valid_from) }}
    from mart_rows
)
{%- endif %}

select * from final
    {%- endif -%}
{%- endmacro %}


{#
    The SQL of `<mart>_history`, a view over its versions model: every version that is not a
    tombstone, with valid_to = the valid_from of the key's next version (a tombstone closes the
    version before it) and is_current = (valid_to is null). Point-in-time reads use
    `valid_from <= t and (valid_to is null or t < valid_to)`.
#}
{% macro feature_history(versions) -%}
    {%- if not execute -%}
        select 1 as parse_time_placeholder
    {%- else -%}
    {%- set key = history_spec(versions.identifier).unique_key -%}
    {%- set own = ['row_hash', 'is_deleted', 'valid_from'] -%}
    {%- set columns = [] -%}
    {%- for column in adapter.get_columns_in_relation(versions) -%}
        {%- if column.name | lower not in own -%}
            {%- do columns.append(adapter.quote(column.name)) -%}
        {%- endif -%}
    {%- endfor -%}
with

versions as (
    select * from {{ versions }}
),

bounded as (
    select
        {%- for column in columns %}
        {{ column }},
        {%- endfor %}
        row_hash,
        is_deleted,
        valid_from,
        lead(valid_from) over (partition by {{ adapter.quote(key) }} order by valid_from) as valid_to
    from versions
),

final as (
    select
        {%- for column in columns %}
        {{ column }},
        {%- endfor %}
        row_hash,
        valid_from,
        valid_to,
        valid_to is null as is_current
    from bounded
    where not is_deleted
)

select * from final
    {%- endif -%}
{%- endmacro %}


{#
    A query returning (mart_name, entity_id) for every entity whose current history version
    (is_current) differs from its row in the mart, or exists on one side only, compared on the
    tracked columns (the mart's columns but the spec's untracked ones, so a column added to the
    mart is compared as soon as it exists).
#}
{% macro current_version_differences(mart, history, versions_name) -%}
    {%- if not execute -%}
        select '' as mart_name, '' as entity_id
    {%- else -%}
    {%- set spec = history_spec(versions_name) -%}
    {%- set columns = [] -%}
    {%- for column in tracked_columns(mart, spec) -%}
        {%- do columns.append(adapter.quote(column.name)) -%}
    {%- endfor -%}
    with

    mart_values as (
        select {{ columns | join(', ') }} from {{ mart }}
    ),

    current_values as (
        select {{ columns | join(', ') }} from {{ history }}
        where is_current
    ),

    only_in_mart as (
        select * from mart_values
        except
        select * from current_values
    ),

    only_in_history as (
        select * from current_values
        except
        select * from mart_values
    ),

    differences as (
        select {{ adapter.quote(spec.unique_key) }} from only_in_mart
        union all
        select {{ adapter.quote(spec.unique_key) }} from only_in_history
    )

    select distinct
        '{{ mart.identifier }}' as mart_name,
        cast({{ adapter.quote(spec.unique_key) }} as {{ dbt.type_string() }}) as entity_id
    from differences
    {%- endif -%}
{%- endmacro %}
