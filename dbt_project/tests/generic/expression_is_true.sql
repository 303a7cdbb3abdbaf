{#
    Generic test: a boolean SQL expression over the model's columns holds on every row.
    A row where the expression is false fails; null counts as a pass, so the expression should
    say what it means for nulls (e.g. "a <= b or a is null"). Usable on a model or a column.
#}
{% test expression_is_true(model, expression, column_name=none) %}

with

model_rows as (
    select * from {{ model }}
),

failing_rows as (
    select * from model_rows
    where not ({{ expression }})
)

select * from failing_rows

{% endtest %}
