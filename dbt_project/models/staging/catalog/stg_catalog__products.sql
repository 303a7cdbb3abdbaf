with

source as (
    select * from {{ source('raw_catalog', 'products') }}
),

-- the raw table keeps every version of a product (dlt scd2); the current one is still open
current_versions as (
    select * from source
    where _dlt_valid_to is null
),

final as (
    select
        -- ids
        id as item_id,
        _dlt_load_id as load_id,

        -- strings
        trim(title) as title,
        trim(description) as description,
        nullif(lower(trim(category)), '') as category,
        image as image_url,

        -- numerics
        cast(price as double) as price,
        cast(rating__rate as double) as catalog_rating,
        rating__count as catalog_rating_count,

        -- timestamps
        cast(_dlt_valid_from as timestamp) as version_valid_from_at
    from current_versions
)

select * from final
