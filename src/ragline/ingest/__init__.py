"""Ingestion engines: the same stages (read, parse, chunk, embed, write) run in-process or on Ray."""
