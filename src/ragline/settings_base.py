"""The base of every settings section, and the one way a settings mistake becomes a ``ConfigError``.

A key a section does not know is an error, never silently ignored (a typo in ``ragline.toml`` or
``RAGLINE_LLM__MODLE`` would otherwise leave the default in place).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ragline.errors import ConfigError


class SettingsSection(BaseModel):
    model_config = ConfigDict(extra="forbid")


S = TypeVar("S", bound=SettingsSection)


def with_changes(section: S, changes: Mapping[str, Any], name: Callable[[tuple[str, ...]], str]) -> S:
    """``section`` with ``changes`` on top (None values ignored), validated like the whole tree; a mistake is
    a ``ConfigError`` whose place ``name`` words (a command's option, for instance)."""
    given = {k: v for k, v in changes.items() if v is not None}
    try:
        return type(section).model_validate({**section.model_dump(), **given})
    except ValidationError as e:
        raise settings_error(e, name) from e


def settings_error(error: ValidationError, name: Callable[[tuple[str, ...]], str]) -> ConfigError:
    """The one way a settings mistake reaches the user: one line, ``<where>: <what is wrong>``, where ``name``
    turns the bad value's location (``("ingest", "embed_batch")``) into the variable, file key or option."""
    first = error.errors()[0]
    return ConfigError(f"{name(tuple(str(part) for part in first['loc']))}: {first['msg']}")
