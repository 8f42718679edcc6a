"""Observability settings (``settings.observability``); plain pydantic, imported by ``ragline.config``.

Environment examples: ``RAGLINE_OBSERVABILITY__LOG_FORMAT=text``,
``RAGLINE_OBSERVABILITY__OTLP_ENDPOINT=http://127.0.0.1:4318/v1/traces``.
"""

from __future__ import annotations

from typing import Literal

from ragline.settings_base import SettingsSection


class ObservabilitySettings(SettingsSection):
    # The server's log lines: one JSON object per line, or plain text for reading in a terminal.
    log_format: Literal["json", "text"] = "json"
    # OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces); None: no tracing, no cost.
    otlp_endpoint: str | None = None
    otlp_headers: dict[str, str] = {}
    service_name: str = "ragline"
