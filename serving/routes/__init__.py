"""The API's routes, one APIRouter per concern (serving.app.create_app includes them in this
order):

- recommendations.py: GET /recommendations/{user_id}, POST /recommendations/batch;
- similar.py: GET /items/{item_id}/similar;
- events.py: POST /events (the spool, serving.spool, and the fresh events, serving.fresh);
- model.py: GET /model;
- health.py: GET /health, GET /metrics (open, never behind the key);
- admin.py: POST /admin/reload.

Routes whose schema holds [serve] bounds (k up to max_k, batches up to max_batch) are built by
`router(settings, default_k)`; the others are module-level routers. Handlers take what they use
through serving.dependencies; common.py holds the declarations they share.
"""
