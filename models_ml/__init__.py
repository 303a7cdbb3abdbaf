"""Training stage: read the marts, split by time, fit implicit ALS, evaluate, gate, log to MLflow.

Modules, in the order the data flows through them:
data (read the marts, read-only; the shop's string ids become int64 codes, ids holds the
vocabularies) -> split (time holdout) -> matrix (user x item confidence: event weights,
ratings, recency, BM25) -> recommender (ALS, explain, similar_items) with coldstart
(recent popularity, category blend, catalog-similar cold items) and baselines (global and recent
popularity), ranking with ranking.top_k -> metrics, rating (biased baseline for RMSE/MAE) and
evaluate -> train (one whole run), with tracking (MLflow store), plots, registry (the champion
gate), pyfunc (the model as an MLflow pyfunc; pyfunc_entry is the file MLflow loads) and batch
(recommendations written back to the warehouse). tune searches hyperparameters on a validation
split of the training period; bench_movielens runs the MovieLens 100K benchmark; cli prints
`recomart recommend`.
"""
