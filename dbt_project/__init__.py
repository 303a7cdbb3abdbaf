"""Transform stage: the dbt project, and `build.py`, which runs it."""
