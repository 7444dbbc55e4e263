"""Helpers for parsed TOML data: deep read-only copies, checked tables, values in messages."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
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


def checked_table(
    data: Mapping[str, Any],
    key: str,
    known: tuple[str, ...],
    *,
    required: bool,
    fail: Callable[[str, str], Exception],
) -> Mapping[str, Any]:
    """The table ``data[key]``, holding only ``known`` keys; an absent optional table is empty.

    ``fail(label, message)`` makes the error to raise.
    """
    if key not in data:
        if required:
            raise fail(f"[{key}]", "missing table (required)")
        return {}
    table = data[key]
    if not isinstance(table, Mapping):
        raise fail(f"[{key}]", f"expected a table, got {show(table)}")
    for name in table:
        if name not in known:
            raise fail(f"[{key}]", f"unknown key {show(name)} (known keys: {', '.join(known)})")
    return table


def check_event_keys(
    table: Mapping[str, Any],
    index: int,
    kinds: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]],
    error: Callable[[str, str], Exception],
) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
    """Check an ``[[events]]`` table's ``do`` and keys against ``kinds`` (required, optional).

    Return the kind, where to say an error is (``event N (kind)``) and the kind's required and
    optional keys; raise what ``error(where, message)`` makes for the first problem.
    """
    kind = table.get("do")
    if not isinstance(kind, str) or kind not in kinds:
        raise error(
            f"event {index}", f"do = {show(kind)}: unknown event (known: {', '.join(kinds)})"
        )
    where = f"event {index} ({kind})"
    required, optional = kinds[kind]
    allowed = ("at", "do", *required, *optional)
    for key in table:
        if key not in allowed:
            raise error(where, f"unknown key {show(key)} (allowed: {', '.join(allowed)})")
    for key in ("at", *required):
        if key not in table:
            raise error(where, f"missing key {show(key)}")
    return kind, where, required, optional
