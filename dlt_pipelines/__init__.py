"""Extract and load: dlt sources for the interactions CSV files and the product catalog API."""

import recomart  # noqa: F401  (sets telemetry off and dlt's project dir before dlt is imported)
