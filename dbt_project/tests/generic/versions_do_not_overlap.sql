{#
    Generic test on a history view (models/history/): the versions of one entity never overlap, so
    a point in time sees at most one. Fails with each pair of versions of the same key where the
    earlier one is still valid (valid_to null or later) when the later one starts.
#}
{% test versions_do_not_overlap(model, key) %}

with

model_rows as (
    select
        {{ key }},
        valid_from,
        valid_to
    from {{ model }}
),

overlapping as (
    select
        earlier.{{ key }},
        earlier.valid_from,
        earlier.valid_to,
        later.valid_from as later_valid_from
    from model_rows as earlier
    inner join model_rows as later
        on
            earlier.{{ key }} = later.{{ key }}
            and earlier.valid_from < later.valid_from
    where earlier.valid_to is null or earlier.valid_to > later.valid_from
)

select * from overlapping

{% endtest %}
