-- The batch recommendations training wrote (recommendations.user_recommendations) obey the rule
-- set's default surface, the rules the API applies to the same lists (rules.toml; var
-- batch_rules, from recomart_core/rulesets.py through dbt_project/build.py): no item outside the
-- categories or the price range, no excluded category or item, nothing the user bought when the
-- surface says so (always, or within bought_window_days before the lists were generated), at most
-- max_per_category items of one category in a user's list, no item twice in a list.
-- Tagged batch_rules: not part of the transform's build (the table is training's output, and a
-- rule changed since the last training would fail it); training runs it right after writing the
-- table whenever the surface has rules. No table yet: nothing to check.
-- Returns one row per broken rule: the user, the item and which rule.
{{ config(tags=['batch_rules']) }}
-- depends_on: {{ ref('item_features') }}
-- depends_on: {{ ref('interactions') }}

{%- set rules = var('batch_rules', {}) -%}
{%- set rules = rules if rules is mapping else {} -%}  {#- sqlfluff's stand-in var is text -#}
{%- set filters = rules.get('filters', {}) -%}
{#- the table when it exists (at parse time, and under sqlfluff, its name) -#}
{%- set relation = adapter.get_relation(
    database=target.database, schema='recommendations', identifier='user_recommendations'
) if execute else 'recommendations.user_recommendations' -%}

{% if relation is none %}

select
    cast(null as varchar) as user_id,
    cast(null as varchar) as item_id,
    cast(null as varchar) as broken_rule
where 1 = 0

{% else %}

    with

    recommendations as (
        select
            cast(user_id as varchar) as user_id,
            cast(item_id as varchar) as item_id,
            generated_at
        from {{ relation }}
    ),

    items as (
        select
            cast(item_id as varchar) as item_id,
            category,
            price
        from {{ ref('item_features') }}
    ),

    listed as (
        select
            recommendations.*,
            items.category,
            items.price
        from recommendations
        left join items on recommendations.item_id = items.item_id
    ),

    broken as (
        {%- if filters.get('categories') is not none %}
        select user_id, item_id, 'categories' as broken_rule from listed
        where category is null or category not in ({{ quoted_list(filters['categories']) }})
        union all
        {%- endif %}
        {%- if filters.get('exclude_categories') %}
        select user_id, item_id, 'exclude_categories' as broken_rule from listed
        where category in ({{ quoted_list(filters['exclude_categories']) }})
        union all
        {%- endif %}
        {%- if filters.get('price_min') is not none %}
        select user_id, item_id, 'price_min' as broken_rule from listed
        where price is null or price < {{ filters['price_min'] }}
        union all
        {%- endif %}
        {%- if filters.get('price_max') is not none %}
        select user_id, item_id, 'price_max' as broken_rule from listed
        where price is null or price > {{ filters['price_max'] }}
        union all
        {%- endif %}
        {%- if rules.get('exclude_item_ids') %}
        select user_id, item_id, 'exclude_item_ids' as broken_rule from listed
        where item_id in ({{ quoted_list(rules['exclude_item_ids']) }})
        union all
        {%- endif %}
        {%- if rules.get('exclude_bought', 'never') != 'never' %}
        select listed.user_id, listed.item_id, 'exclude_bought' as broken_rule
        from listed
        inner join {{ ref('interactions') }} as bought
            on listed.user_id = cast(bought.user_id as varchar)
            and listed.item_id = cast(bought.item_id as varchar)
        where bought.event_type = 'purchase'
        {%- if rules.get('exclude_bought') == 'window' %}
            and bought.event_at
            >= listed.generated_at - to_seconds({{ (rules.get('bought_window_days', 30) * 86400) | int }})
        {%- endif %}
        union all
        {%- endif %}
        {%- if rules.get('diversity', {}).get('max_per_category') is not none %}
        select user_id, min(item_id) as item_id, 'max_per_category' as broken_rule from listed
        group by user_id, category
        having count(*) > {{ rules['diversity']['max_per_category'] }}
        union all
        {%- endif %}
        select
            user_id,
            min(item_id) as item_id,
            'an item twice' as broken_rule
        from listed
        group by user_id, item_id
        having count(*) > 1
    )

    select * from broken

{% endif %}
