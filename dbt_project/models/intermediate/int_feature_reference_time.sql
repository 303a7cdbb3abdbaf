-- The one reference time of the feature marts: the as_of var when set, else the latest clean event.
-- Never now(): the same data must give the same features, build after build.

with

validated as (
    select * from {{ ref('int_interactions_validated') }}
),

clean_interactions as (
    select * from validated
    where rejection_reason is null
),

final as (
    select
        coalesce(
            {{ as_of_timestamp() }},
            max(event_at)
        ) as features_as_of
    from clean_interactions
)

select * from final
