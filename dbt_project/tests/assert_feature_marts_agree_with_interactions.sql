-- The feature marts must account for exactly the clean interactions: the interaction counts of
-- user_features, item_features and user_item_features each sum to the rows of `interactions`, their
-- observed-rating counts each sum to its rows with an observed rating, and user_item_features has one
-- row per distinct (user_id, item_id) pair of `interactions`. A failure means a mart dropped or
-- double-counted interactions (a join that fans out, a filter, a mart built from another source).
-- Returns one row per invariant that does not hold, with the two numbers compared.

with

interactions as (
    select * from {{ ref('interactions') }}
),

user_features as (
    select * from {{ ref('user_features') }}
),

item_features as (
    select * from {{ ref('item_features') }}
),

user_item_features as (
    select * from {{ ref('user_item_features') }}
),

interaction_totals as (
    select
        count(*) as interaction_rows,
        count(rating) filter (where not is_rating_imputed) as observed_rating_rows
    from interactions
),

interaction_pairs as (
    select distinct
        user_id,
        item_id
    from interactions
),

interaction_pair_totals as (
    select count(*) as pair_count
    from interaction_pairs
),

user_totals as (
    select
        coalesce(sum(interaction_count), 0) as interaction_rows,
        coalesce(sum(rated_count), 0) as observed_rating_rows
    from user_features
),

item_totals as (
    select
        coalesce(sum(interaction_count), 0) as interaction_rows,
        coalesce(sum(rating_count), 0) as observed_rating_rows
    from item_features
),

pair_totals as (
    select
        count(*) as pair_count,
        coalesce(sum(interaction_count), 0) as interaction_rows,
        coalesce(sum(rated_count), 0) as observed_rating_rows
    from user_item_features
),

comparisons as (
    select
        'user_features.interaction_count' as invariant_name,
        interaction_totals.interaction_rows as expected_value,
        user_totals.interaction_rows as actual_value
    from interaction_totals
    cross join user_totals

    union all

    select
        'user_features.rated_count' as invariant_name,
        interaction_totals.observed_rating_rows as expected_value,
        user_totals.observed_rating_rows as actual_value
    from interaction_totals
    cross join user_totals

    union all

    select
        'item_features.interaction_count' as invariant_name,
        interaction_totals.interaction_rows as expected_value,
        item_totals.interaction_rows as actual_value
    from interaction_totals
    cross join item_totals

    union all

    select
        'item_features.rating_count' as invariant_name,
        interaction_totals.observed_rating_rows as expected_value,
        item_totals.observed_rating_rows as actual_value
    from interaction_totals
    cross join item_totals

    union all

    select
        'user_item_features.interaction_count' as invariant_name,
        interaction_totals.interaction_rows as expected_value,
        pair_totals.interaction_rows as actual_value
    from interaction_totals
    cross join pair_totals

    union all

    select
        'user_item_features.rated_count' as invariant_name,
        interaction_totals.observed_rating_rows as expected_value,
        pair_totals.observed_rating_rows as actual_value
    from interaction_totals
    cross join pair_totals

    union all

    select
        'user_item_features rows' as invariant_name,
        interaction_pair_totals.pair_count as expected_value,
        pair_totals.pair_count as actual_value
    from interaction_pair_totals
    cross join pair_totals
),

final as (
    select * from comparisons
    where expected_value != actual_value
)

select * from final
