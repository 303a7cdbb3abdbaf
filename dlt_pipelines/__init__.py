"""Extract and load: dlt sources for the interactions CSV files and the product catalog."""
