"""RecoMart: recommendations for e-commerce (dlt -> dbt -> Soda -> implicit ALS -> MLflow)."""

from recomart import env as _env

_env.prepare()
