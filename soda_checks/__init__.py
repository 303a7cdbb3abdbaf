"""Quality stage: the Soda v4 contracts, and `gate.py`, which runs, scores and publishes them."""
