{#
    The point-in-time cutoff, from var('as_of').

    Unset when the var is null, empty, or the string "none"/"null" (a CLI may pass those).
    Otherwise a timestamp or a date, read as UTC unless it carries its own offset
    ("2026-10-01" means 2026-10-01 00:00:00 UTC; "2026-10-01T02:00:00+02:00" means 00:00 UTC).
#}

{% macro as_of_is_set() -%}
    {%- set as_of = var('as_of', none) -%}
    {{- return(as_of is not none and (as_of | string | trim | lower) not in ('', 'none', 'null')) -}}
{%- endmacro %}


{# The cutoff as a SQL expression of type timestamp (UTC), or a typed null when unset. #}
{% macro as_of_timestamp() -%}
    {%- if as_of_is_set() -%}
        {%- set literal = var('as_of') | string | trim | replace("'", "''") -%}
        {{ utc_timestamp_literal(literal) }}
    {%- else -%}
        cast(null as timestamp)
    {%- endif -%}
{%- endmacro %}


{#
    A boolean SQL expression: true when the event time `column` is within the cutoff
    (column <= as_of), always true when no cutoff is set. A null event time is never within a
    set cutoff. Every place that applies the cutoff uses this macro, so they cannot disagree.
#}
{% macro is_within_as_of(column) -%}
    {%- if as_of_is_set() -%}
        ({{ column }} <= {{ as_of_timestamp() }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{#
    A timestamp literal (text, quotes already doubled) as a plain UTC timestamp: read as UTC
    unless it carries its own offset. DuckDB: through timestamptz, in the session's UTC (profiles.yml);
    Spark: its timestamp is an instant, read the same way in the session's UTC.
#}
{% macro utc_timestamp_literal(literal) -%}
    {{ return(adapter.dispatch('utc_timestamp_literal', 'recomart')(literal)) }}
{%- endmacro %}

{% macro default__utc_timestamp_literal(literal) -%}
    cast(cast('{{ literal }}' as timestamptz) as timestamp)
{%- endmacro %}

{% macro spark__utc_timestamp_literal(literal) -%}
    cast('{{ literal }}' as timestamp)
{%- endmacro %}
