{#
    Generic test: the combination of `columns` is unique over the model (a composite primary key),
    and none of them is null. Fails with one row per offending combination and its row count.
#}
{% test unique_combination(model, columns) %}

with

model_rows as (
    select * from {{ model }}
),

offending_combinations as (
    select
        {{ columns | join(', ') }},
        count(*) as row_count
    from model_rows
    group by {{ columns | join(', ') }}
    having
        count(*) > 1
        {%- for column in columns %}
        or {{ column }} is null
        {%- endfor %}
)

select * from offending_combinations

{% endtest %}
