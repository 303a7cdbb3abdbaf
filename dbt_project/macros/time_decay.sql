{#
    Elapsed time between two timestamps in fractional days (microsecond precision):
    positive when end_at is after start_at.
#}
{% macro days_between(start_at, end_at) -%}
    ({{ microseconds_between(start_at, end_at) }} / 86400000000.0)
{%- endmacro %}


{# var('feature_half_life_days') as a number, refusing a value that is not > 0. #}
{% macro feature_half_life_days() -%}
    {%- set half_life = var('feature_half_life_days') | float -%}
    {%- if half_life <= 0 -%}
        {{ exceptions.raise_compiler_error(
            "var feature_half_life_days must be > 0, got " ~ var('feature_half_life_days')) }}
    {%- endif -%}
    {{- half_life -}}
{%- endmacro %}


{#
    Weight of an event that is age_days old under exponential decay with the configured
    half-life: 1 at age 0, 0.5 at one half-life, 0.25 at two.
#}
{% macro decay_weight(age_days) -%}
    exp(-ln(2) * {{ age_days }} / {{ feature_half_life_days() }})
{%- endmacro %}
