{#
    Schema names are exactly the custom schema of a folder (staging, intermediate, marts,
    history), not dbt's default "<target schema>_<custom schema>", because the other stages
    (Soda, training, serving) read fixed names such as marts.interactions.
    Nodes without a custom schema go to the target schema of the profile.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
