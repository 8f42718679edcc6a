"""Logs, traces and ingest metrics: what an operator sees of a running ragline.

* ``logging``: JSON log lines carrying the id of the request they belong to;
* ``tracing``: OpenTelemetry spans of the query path, a no-op unless an OTLP endpoint is configured;
* ``ingest_metrics``: Prometheus counters of ingests run in this process.

Nothing heavy is imported here: ``ragline.config`` imports the settings module.
"""
