"""Training stage: read the marts, split by time, fit implicit ALS, evaluate, log to MLflow.

Modules, in the order the data flows through them:
data (read the marts) -> split (time holdout) -> matrix (user x item confidence) ->
recommender (ALS) and baselines (popularity), both ranking with ranking.top_k helpers ->
metrics and evaluate -> train (one whole run), with tracking (MLflow store and experiment) and
pyfunc (the model as an MLflow pyfunc; pyfunc_entry is the file MLflow loads it from).
synthetic writes planted-taste marts for tests and development.
"""
