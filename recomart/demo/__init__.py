"""Demo data: the generator and the embedded Fake-Store-shaped catalog API (no stage imports it)."""
