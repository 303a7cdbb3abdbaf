"""Training stage: read the training set, split by time, fit the [train] family (families/),
evaluate, gate, log to MLflow, package.

Modules, in the order the data flows through them:
data (the training set through the feature store's point-in-time API, feature_store; the
shop's string ids become int64 codes, ids holds the vocabularies) -> split (time holdout) ->
matrix (user x item confidence: event weights, ratings, recency, BM25) -> recommender (the
shared base: exclusion, top-k, blends, explain, similar_items) and families (one class each,
settings from [train] and [train.<family>]) with coldstart (recent
popularity, category blend, catalog-similar cold items) and baselines (global and recent
popularity), ranking with ranking.top_k -> metrics, rating (biased baseline for RMSE/MAE) and
evaluate -> train (one whole run), with tracking (MLflow store), plots, registry (the champion
gate), package (the trained model on disk: its files, save, load, install), pyfunc (the model as
an MLflow pyfunc shipping only the code it needs; pyfunc_entry is the file MLflow loads) and batch
(recommendations written back to the warehouse). tune searches hyperparameters on a validation
split of the training period. The floor above, serving/, is the API over the registry's champion;
it reads model packages only, never the trainer or the warehouse.
"""
