{#
    var('transaction_lines'), the rule for the lines of one transaction that list the same item:
    'sum' (one event, quantities and values added) or 'latest' (the last line wins); compilation
    fails on anything else.
#}
{% macro transaction_lines_rule() -%}
    {%- set rule = var('transaction_lines') | string | trim | lower -%}
    {%- if rule not in ('sum', 'latest') -%}
        {{ exceptions.raise_compiler_error(
            "var transaction_lines must be 'sum' or 'latest', got '" ~ var('transaction_lines') ~ "'") }}
    {%- endif -%}
    {{- return(rule) -}}
{%- endmacro %}
