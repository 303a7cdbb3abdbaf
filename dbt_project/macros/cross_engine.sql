{#
    The SQL that differs between the engines the project builds on: DuckDB (the default) and Spark
    (dbt-spark, `--target spark`). Each macro is dispatched (adapter.dispatch): `default__` is the
    DuckDB SQL the models always had, `spark__` gives the same values on Spark. Everything else in
    the models is SQL both engines read the same way; see dbt_project/README.md.
#}


{# Microseconds since the Unix epoch of a timestamp (a bigint). #}
{% macro epoch_microseconds(timestamp) -%}
    {{ return(adapter.dispatch('epoch_microseconds', 'recomart')(timestamp)) }}
{%- endmacro %}

{% macro default__epoch_microseconds(timestamp) -%}
    epoch_us({{ timestamp }})
{%- endmacro %}

{% macro spark__epoch_microseconds(timestamp) -%}
    {#- the cast: a naive timestamp read from Parquet is timestamp_ntz; the session is UTC -#}
    unix_micros(cast({{ timestamp }} as timestamp))
{%- endmacro %}


{# Microseconds from start_at to end_at (positive when end_at is later), as a number. #}
{% macro microseconds_between(start_at, end_at) -%}
    {{ return(adapter.dispatch('microseconds_between', 'recomart')(start_at, end_at)) }}
{%- endmacro %}

{% macro default__microseconds_between(start_at, end_at) -%}
    date_diff('microsecond', {{ start_at }}, {{ end_at }})
{%- endmacro %}

{% macro spark__microseconds_between(start_at, end_at) -%}
    {#- a double, so the division by a decimal literal stays a double (not Spark's decimal) -#}
    cast({{ epoch_microseconds(end_at) }} - {{ epoch_microseconds(start_at) }} as double)
{%- endmacro %}


{#
    The time a dlt load started, from its load id (its Unix time in seconds, as text), to the
    microsecond; null when the load id is not a number.
#}
{% macro timestamp_from_load_id(load_id) -%}
    {{ return(adapter.dispatch('timestamp_from_load_id', 'recomart')(load_id)) }}
{%- endmacro %}

{% macro default__timestamp_from_load_id(load_id) -%}
    make_timestamp(cast(try_cast({{ load_id }} as double) * 1000000 as bigint))
{%- endmacro %}

{% macro spark__timestamp_from_load_id(load_id) -%}
    {#- DuckDB's cast of a double to bigint rounds to the nearest integer, a tie to the even one;
        Spark's truncates: bround rounds like DuckDB -#}
    timestamp_micros(cast(bround(try_cast({{ load_id }} as double) * 1000000) as bigint))
{%- endmacro %}


{# ISO day of week of a timestamp: 1 = Monday ... 7 = Sunday. #}
{% macro iso_day_of_week(timestamp) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'recomart')(timestamp)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(timestamp) -%}
    isodow({{ timestamp }})
{%- endmacro %}

{% macro spark__iso_day_of_week(timestamp) -%}
    (weekday({{ timestamp }}) + 1)
{%- endmacro %}


{# True when a number is neither NaN nor infinite; null when it is null. #}
{% macro is_finite(number) -%}
    {{ return(adapter.dispatch('is_finite', 'recomart')(number)) }}
{%- endmacro %}

{% macro default__is_finite(number) -%}
    isfinite({{ number }})
{%- endmacro %}

{% macro spark__is_finite(number) -%}
    {#- isnan(null) is false and abs(null) = inf is null: null in, null out -#}
    (not (isnan({{ number }}) or abs({{ number }}) = cast('Infinity' as double)))
{%- endmacro %}


{# Integer division, rounded towards minus infinity for the non-negative counts it is used on. #}
{% macro integer_divide(dividend, divisor) -%}
    {{ return(adapter.dispatch('integer_divide', 'recomart')(dividend, divisor)) }}
{%- endmacro %}

{% macro default__integer_divide(dividend, divisor) -%}
    ({{ dividend }}) // {{ divisor }}
{%- endmacro %}

{% macro spark__integer_divide(dividend, divisor) -%}
    ({{ dividend }}) div ({{ divisor }})
{%- endmacro %}


{#
    A double as text, the way DuckDB writes it (shortest digits that read back as the same double,
    exponent notation below 1e-4 and from 1e16: `4.0`, `0.0005`, `12345678.0`, `1e-05`, `1e+16`,
    `1.5e+20`, `nan`, `inf`, `-inf`). Used where the text goes into a key (a hash), so both engines
    give every row the same key. Null stays null.
#}
{% macro double_as_text(number) -%}
    {{ return(adapter.dispatch('double_as_text', 'recomart')(number)) }}
{%- endmacro %}

{% macro default__double_as_text(number) -%}
    cast({{ number }} as varchar)
{%- endmacro %}

{% macro spark__double_as_text(number) -%}
    {#-
        Java's text of a double has the same shortest digits in its own layout (`1.2345678E7`,
        `5.0E-4`, `1.0E16`; plain from 1e-3 to 1e7, where it is DuckDB's): from its mantissa
        (`.0` dropped) and exponent, DuckDB's layout.
    -#}
    {%- set x = 'cast(' ~ number ~ ' as double)' -%}
    {%- set java = 'cast(abs(' ~ x ~ ') as string)' -%}
    {%- set mantissa = "regexp_replace(split_part(" ~ java ~ ", 'E', 1), '\\\\.0$', '')" -%}
    {%- set digits = "replace(" ~ mantissa ~ ", '.', '')" -%}
    {%- set exponent = "try_cast(split_part(" ~ java ~ ", 'E', 2) as int)" -%}
    case
        when {{ x }} is null then null
        when isnan({{ x }}) then 'nan'
        when {{ x }} = cast('Infinity' as double) then 'inf'
        when {{ x }} = cast('-Infinity' as double) then '-inf'
        else concat(
            case when {{ x }} < 0 then '-' else '' end,
            case
                when {{ exponent }} is null then {{ java }}
                when {{ exponent }} = -4 then concat('0.000', {{ digits }})
                when {{ exponent }} between 7 and 15 then
                    case
                        when length({{ digits }}) > {{ exponent }} + 1 then concat(
                            substr({{ digits }}, 1, {{ exponent }} + 1), '.',
                            substr({{ digits }}, {{ exponent }} + 2)
                        )
                        else concat(rpad({{ digits }}, {{ exponent }} + 1, '0'), '.0')
                    end
                else concat(
                    {{ mantissa }}, 'e', case when {{ exponent }} < 0 then '-' else '+' end,
                    lpad(cast(abs({{ exponent }}) as string), 2, '0')
                )
            end
        )
    end
{%- endmacro %}


{#
    A column name quoted for the engine ("timestamp" on DuckDB, `timestamp` on Spark): for raw
    columns whose names are SQL keywords.
#}
{% macro quoted_column(name) -%}
    {{- adapter.quote(name) -}}
{%- endmacro %}


{#
    The body of interactions.sql's counts_before: for every row of `instants` (item_id, event_at,
    rating_value), how often that rating value had been observed strictly before event_at, for
    the item (n_item, from `item_counts`) and overall (n_global, from `global_counts`); 0 when never.
    The counts are running totals (non-decreasing in event_at), so the latest one strictly before
    an instant is the one that applies. DuckDB: two ASOF joins. Spark (no ASOF join): each instant
    placed among the counts of its key, ordered by time with the instant before counts at the same
    time, and the running maximum of the counts up to it.
#}
{% macro counts_before(instants, item_counts, global_counts) -%}
    {{ return(adapter.dispatch('counts_before', 'recomart')(instants, item_counts, global_counts)) }}
{%- endmacro %}

{% macro default__counts_before(instants, item_counts, global_counts) -%}
    select
        {{ instants }}.item_id,
        {{ instants }}.event_at,
        {{ instants }}.rating_value,
        coalesce({{ item_counts }}.n_observed, 0) as n_item,
        coalesce({{ global_counts }}.n_observed, 0) as n_global
    from {{ instants }}
    asof left join {{ item_counts }}
        on
            {{ instants }}.item_id = {{ item_counts }}.item_id
            and {{ instants }}.rating_value = {{ item_counts }}.rating
            and {{ instants }}.event_at > {{ item_counts }}.event_at
    asof left join {{ global_counts }}
        on
            {{ instants }}.rating_value = {{ global_counts }}.rating
            and {{ instants }}.event_at > {{ global_counts }}.event_at
{%- endmacro %}

{% macro spark__counts_before(instants, item_counts, global_counts) -%}
    select
        item_lookups.item_id,
        item_lookups.event_at,
        item_lookups.rating_value,
        coalesce(item_lookups.n_observed, 0) as n_item,
        coalesce(global_lookups.n_observed, 0) as n_global
    from (
        select
            item_id,
            event_at,
            rating_value,
            is_instant,
            max(n_observed) over (
                partition by item_id, rating_value
                order by event_at, is_instant desc
                rows between unbounded preceding and current row
            ) as n_observed
        from (
            select item_id, event_at, rating_value, 1 as is_instant, cast(null as bigint) as n_observed
            from {{ instants }}
            union all
            select item_id, event_at, rating as rating_value, 0 as is_instant, n_observed
            from {{ item_counts }}
        ) as item_timeline
    ) as item_lookups
    inner join (
        select
            event_at,
            rating_value,
            is_instant,
            max(n_observed) over (
                partition by rating_value
                order by event_at, is_instant desc
                rows between unbounded preceding and current row
            ) as n_observed
        from (
            select distinct event_at, rating_value, 1 as is_instant, cast(null as bigint) as n_observed
            from {{ instants }}
            union all
            select event_at, rating as rating_value, 0 as is_instant, n_observed
            from {{ global_counts }}
        ) as global_timeline
    ) as global_lookups
        on
            item_lookups.event_at = global_lookups.event_at
            and item_lookups.rating_value = global_lookups.rating_value
            and global_lookups.is_instant = 1
    where item_lookups.is_instant = 1
{%- endmacro %}
