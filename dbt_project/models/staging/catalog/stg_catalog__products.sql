with

source as (
    select * from {{ source('raw_catalog', 'products') }}
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
        rating__count as catalog_rating_count
    from source
)

select * from final
