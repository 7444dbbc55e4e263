"""Deep read-only copies of parsed TOML data."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


def freeze(value: Any) -> Any:
    """Return ``value`` with every table as a read-only mapping and every array as a tuple."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    return value


def show(value: object, *, limit: int = 60) -> str:
    """Render a TOML value for an error message: strings quoted, tables named, long values cut."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, Mapping):
        text = "a table"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(show(item, limit=limit) for item in value) + "]"
    else:
        text = str(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
