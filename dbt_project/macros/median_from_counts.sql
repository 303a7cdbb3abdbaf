{#
    Aggregate: the median of n sorted values known only by their cumulative counts, as median()
    gives it: the mean of the ((n + 1) // 2)-th and the (n // 2 + 1)-th value, the j-th being
    the smallest value whose cumulative count (values <= it) reaches j; null when n is 0.
#}
{% macro median_from_counts(value, at_most, total) -%}
    case
        when max({{ total }}) > 0
            then (
                min({{ value }}) filter (
                    where {{ at_most }} >= {{ integer_divide(total ~ ' + 1', 2) }}
                )
                + min({{ value }}) filter (where {{ at_most }} >= {{ integer_divide(total, 2) }} + 1)
            ) / 2.0
    end
{%- endmacro %}
