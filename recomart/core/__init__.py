"""The bottom layer: settings, column names, environment, logs and the warehouse file.

It imports nothing of ours outside this package.
"""
