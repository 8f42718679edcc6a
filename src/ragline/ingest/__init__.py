"""Ingest: the same stages (read, parse, chunk, embed, write) run in-process (``local``) or on Ray (``ray_engine``),
with what both own: change detection (``changes``), the crash-safe writer (``writer``), the run's options and
finish (``run``) and its report (``report``)."""
