"""`lipsync eval`: measure a model on real clips and write a report (cli.py, report.py).

The measures themselves live in `lipsync_core.evaluate` (shared with the model card and personalization).
"""
