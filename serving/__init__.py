"""The recommendation API: FastAPI + uvicorn over the registry's `champion` model.

- settings.py: [serve] of recomart.toml and the environment (API key).
- snapshot.py: ServingModel, an immutable model ready to answer (lists precomputed at load).
- loader.py: finds the champion in the MLflow registry and builds a ServingModel from it.
- holder.py: the current ServingModel, swapped atomically when a new champion is promoted.
- schemas.py: request and response bodies (the OpenAPI schema at /docs).
- metrics.py: Prometheus text for GET /metrics.
- app.py: builds the FastAPI application; routes/: one router per concern (recommendations,
  similar items, model, health and metrics, admin); dependencies.py: what the routes share
  (the holder, the served model, settings, the API key); server.py: uvicorn; connections.py,
  guard.py: the bounds on connections and requests.
- local.py: `recomart recommend`, the local champion copy's answer without the API.
"""
