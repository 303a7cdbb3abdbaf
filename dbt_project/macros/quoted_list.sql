{# SQL string literals of `values`, comma-separated, quotes doubled: for `x in (...)`. #}
{% macro quoted_list(values) -%}
    {%- for value in values -%}
        '{{ value | replace("'", "''") }}'{{ ", " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}
