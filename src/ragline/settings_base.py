"""The base of every settings section: a key a section does not know is an error, never silently ignored
(a typo in ``ragline.toml`` or ``RAGLINE_LLM__MODLE`` would otherwise leave the default in place)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SettingsSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
