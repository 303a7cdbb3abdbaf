-- An interaction_key must not be both accepted (`interactions`) and rejected
-- (`rejected_interactions`). A failure means the two marts no longer split the validated rows on
-- the same rule (rejection_reason null / not null). Returns the keys found in both.

with

interactions as (
    select * from {{ ref('interactions') }}
),

rejected_interactions as (
    select * from {{ ref('rejected_interactions') }}
),

final as (
    select interactions.interaction_key
    from interactions
    inner join rejected_interactions
        on interactions.interaction_key = rejected_interactions.interaction_key
)

select * from final
