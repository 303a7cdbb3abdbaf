{#
    Generic test: every non-null value of the column lies in [min_value, max_value].
    Either bound may be omitted (no bound on that side). Nulls pass: test them with not_null.
    Fails with one row per offending value (and how many rows carry it).
#}
{% test value_between(model, column_name, min_value=none, max_value=none) %}

    {%- if min_value is none and max_value is none -%}
        {{ exceptions.raise_compiler_error(
            "value_between on " ~ column_name ~ " needs min_value, max_value or both") }}
    {%- endif %}

with

column_values as (
    select {{ column_name }} as value_to_check
    from {{ model }}
    where {{ column_name }} is not null
),

out_of_range as (
    select
        value_to_check,
        count(*) as row_count
    from column_values
    where
        false
        {%- if min_value is not none %}
        or value_to_check < {{ min_value }}
        {%- endif %}
        {%- if max_value is not none %}
        or value_to_check > {{ max_value }}
        {%- endif %}
    group by value_to_check
)

select * from out_of_range

{% endtest %}
