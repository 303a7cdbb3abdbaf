{#
    Generic test on a versions model (models/history/): each row is a change of its entity. Fails
    with the rows that are not: an entity's first row is a tombstone, a tombstone follows a
    tombstone, or a version has the same row_hash as the version right before it (a build that
    appended a row although nothing compared had changed).
#}
{% test versions_are_changes(model, key) %}

with

model_rows as (
    select * from {{ model }}
),

ordered as (
    select
        {{ key }},
        row_hash,
        is_deleted,
        valid_from,
        row_number() over (partition by {{ key }} order by valid_from) as version_number,
        lag(row_hash) over (partition by {{ key }} order by valid_from) as previous_row_hash,
        lag(is_deleted) over (partition by {{ key }} order by valid_from) as previous_is_deleted
    from model_rows
),

failing_rows as (
    select * from ordered
    where
        (version_number = 1 and is_deleted)
        or (is_deleted and previous_is_deleted)
        or (not is_deleted and not previous_is_deleted and row_hash = previous_row_hash)
)

select * from failing_rows

{% endtest %}
