"""The ground floor: settings, column names, environment, logs, timing and the warehouse file.

It imports nothing of ours outside this package.
"""
