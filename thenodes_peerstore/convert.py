"""The one converter between TOML data and this package's models, and its error messages.

Used at every edge where data comes in: the peer file (:mod:`thenodes_peerstore.codec`) and the
host config (:mod:`thenodes_peerstore.config`).
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Mapping
from typing import TypeVar

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn
from cattrs.v import format_exception

from thenodes_peerstore.errors import AddressError
from thenodes_peerstore.model import PeerEntry, Source, canonical_addr

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
"""TOML integers are 64-bit; a larger one is refused, never stored."""

T = TypeVar("T")

_short = reprlib.Repr()
_short.maxstring = _short.maxother = 80
_short.maxlong = 40
_short.maxlevel = 3
_short.maxlist = _short.maxdict = 8


def show(value: object) -> str:
    """A short ``repr`` for messages: long strings and numbers elided, nesting cut at 3 levels."""
    return _short.repr(value)


def in_int64(value: int) -> bool:
    """Whether an integer fits TOML's 64-bit range."""
    return INT_MIN <= value <= INT_MAX


def _strict(kind: type[T], noun: str) -> Callable[[object, object], T]:
    def structure(value: object, _: object) -> T:
        # bool is an int in Python, never in a TOML file or a config.
        if type(value) is not kind:
            raise TypeError(f"expected {noun}, got {type(value).__name__} {show(value)}")
        if isinstance(value, int) and not in_int64(value):
            raise ValueError(f"expected {noun} in TOML's 64-bit range, got {show(value)}")
        return value

    return structure


def make_converter() -> cattrs.Converter:
    """The converter: strict types, unknown keys refused, defaults omitted on output.

    No string-to-int or int-to-bool coercion; an optional field at its default is left out,
    never written as null.
    """
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(int, _strict(int, "an integer"))
    conv.register_structure_hook(bool, _strict(bool, "true or false"))
    conv.register_structure_hook(str, _strict(str, "a string"))

    def structure_strings(value: object, _: object) -> tuple[str, ...]:
        # Without this, a string would become a tuple of its characters, a table its keys.
        if not isinstance(value, list):
            raise TypeError(f"expected an array, got {type(value).__name__} {show(value)}")
        return tuple(conv.structure(item, str) for item in value)

    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], structure_strings)

    def structure_source(value: object, _: object) -> Source:
        source = Source.from_label(value)
        if source is None:
            labels = ", ".join(repr(s.label) for s in Source)
            raise ValueError(f"expected one of {labels}, got {show(value)}")
        return source

    conv.register_structure_hook(Source, structure_source)
    conv.register_unstructure_hook(Source, lambda source: source.label)

    def entry_hook(cls: type[PeerEntry]) -> Callable[[object, type[PeerEntry]], PeerEntry]:
        structure_fields = make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True)

        def structure_entry(value: object, cls: type[PeerEntry]) -> PeerEntry:
            if not isinstance(value, Mapping):
                raise TypeError(f"expected a table, got {type(value).__name__}")
            data = dict(value)
            # Accept any spelling of an address a person may have typed; keep the canonical one.
            if isinstance(data.get("addr"), str):
                try:
                    data["addr"] = canonical_addr(data["addr"])
                except AddressError as exc:
                    raise ValueError(f"addr {exc}") from None
            return structure_fields(data, cls)

        return structure_entry

    is_entry = lambda t: isinstance(t, type) and issubclass(t, PeerEntry)  # noqa: E731
    conv.register_structure_hook_factory(is_entry, entry_hook)
    conv.register_unstructure_hook_factory(
        is_entry, lambda cls: make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=True)
    )
    conv.register_unstructure_hook(tuple, list)
    return conv


converter = make_converter()


def describe_error(exc: BaseException, path: str) -> list[str]:
    """Readable messages for a structuring error, each naming where it happened."""
    try:
        if isinstance(exc, cattrs.BaseValidationError):
            return cattrs.transform_error(exc, path=path, format_exception=_format_exception)
        if isinstance(exc, RecursionError):
            return [f"nested too deeply @ {path}"]
        return [f"{exc} @ {path}"]
    except Exception:  # describing must never cost more than the error itself
        return [f"invalid ({type(exc).__name__}) @ {path}"]


def _format_exception(exc: BaseException, type_: type | None) -> str:
    # Our own hooks and validators already say what was expected and what was found.
    if isinstance(exc, TypeError | ValueError) and not isinstance(exc, cattrs.BaseValidationError):
        return str(exc)
    return format_exception(exc, type_)
