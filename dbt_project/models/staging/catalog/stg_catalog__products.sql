{#-
    The current catalog. Its raw table may lack columns (catalog files carry no API rating) or be
    absent altogether ([catalog] source = "none", var catalog_source): then the model has the same
    columns, filled with nulls, and no rows.
-#}
{%- set columns = [] -%}
{%- if var('catalog_source') != 'none' -%}
    {%- set products = source('raw_catalog', 'products') -%}
    {%- set columns = existing_columns(products) -%}
{%- endif -%}

with

source as (
    {% if columns %}
        select * from {{ products }}
        -- the raw table keeps every version of a product (dlt scd2); the current one is still open
        where _dlt_valid_to is null
    {% else %}
        select
            cast(null as string) as id,
            cast(null as string) as _dlt_load_id,
            cast(null as timestamp) as _dlt_valid_from
        where false
    {% endif %}
),

final as (
    select
        -- ids
        cast(id as string) as item_id,
        _dlt_load_id as load_id,

        -- strings
        trim({{ column_or_null('title', columns, 'string') }}) as title,
        trim({{ column_or_null('description', columns, 'string') }}) as description,
        nullif(lower(trim({{ column_or_null('category', columns, 'string') }})), '') as category,
        {{ column_or_null('image', columns, 'string') }} as image_url,

        -- numerics
        {{ column_or_null('price', columns, 'double') }} as price,
        {{ column_or_null('rating__rate', columns, 'double') }} as catalog_rating,
        {{ column_or_null('rating__count', columns, 'bigint') }} as catalog_rating_count,

        -- timestamps
        cast(_dlt_valid_from as timestamp) as version_valid_from_at
    from source
)

select * from final
