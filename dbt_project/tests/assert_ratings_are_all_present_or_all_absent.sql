-- marts.interactions has a rating on every row (observed or imputed) when the log has any rating,
-- and on none when it has no rating at all (an implicit-feedback log). A failure means the
-- imputation left some ratings null, or invented ratings for a log without any. Returns one row
-- with the counts.

with

interactions as (
    select * from {{ ref('interactions') }}
),

final as (
    select
        count(*) as row_count,
        count(rating) as rated_count
    from interactions
    having count(rating) > 0 and count(rating) < count(*)
)

select * from final
