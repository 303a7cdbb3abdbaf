{{ config(enabled=var('catalog_source', 'api') != 'none') }}

-- The product history written by dlt (raw_catalog.products, scd2) must give each product at most
-- one version at any instant: every closed version ends after it starts, and each version of a
-- product starts no earlier than the previous one ended. A failure means the catalog "as of" a
-- past time would show a product twice (a package loaded out of order, or rows edited by hand).
-- Rows from before the catalog kept history have no _dlt_valid_from: they sort first. Returns the
-- offending versions.

with

products as (
    select * from {{ source('raw_catalog', 'products') }}
),

versions as (
    select
        id,
        _dlt_id,
        _dlt_valid_from,
        _dlt_valid_to,
        lag(_dlt_valid_to) over (
            partition by id order by _dlt_valid_from nulls first, _dlt_valid_to nulls last
        ) as previous_valid_to,
        lag(_dlt_id) over (
            partition by id order by _dlt_valid_from nulls first, _dlt_valid_to nulls last
        ) as previous_dlt_id
    from products
),

final as (
    select
        id,
        _dlt_id,
        _dlt_valid_from,
        _dlt_valid_to,
        previous_valid_to
    from versions
    where
        _dlt_valid_to <= _dlt_valid_from
        -- the previous version is still open, or ends after this one starts
        or (previous_dlt_id is not null and previous_valid_to is null)
        or previous_valid_to > _dlt_valid_from
)

select * from final
