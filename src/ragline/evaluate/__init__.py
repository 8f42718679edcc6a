"""Evaluation: datasets (page questions, BEIR), metrics, the runner that compares retrieval methods,
answer scoring, and reports (JSON, Markdown, PNG). ``ragline eval`` and ``bench/eval.py`` drive it."""
