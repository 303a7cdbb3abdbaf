"""RecoMart: recommendations for e-commerce (dlt -> dbt -> Soda -> implicit ALS -> MLflow).

Layers (tests/test_layers.py holds them): `recomart.core` (settings, column names, environment,
logs, the warehouse file) imports nothing else of ours; the stages (`dlt_pipelines`, `dbt_project`,
`soda_checks`, `recomart.features`, `models_ml`) import only core and the stages before them;
`recomart.cli`, `recomart.pipeline` and `orchestration` sit on top. Importing a module changes
nothing.
"""
