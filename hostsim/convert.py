"""Reading TOML documents into attrs models: the one cattrs converter hostsim uses, and its errors.

Host configs and both scenario formats are structured by :data:`converter`. It is strict where
TOML is loose for Python: an integer is never a bool, a string is never an array, a table is a
table. Checked values are spelled as :data:`typing.Annotated` types (:data:`Port`,
:data:`PositiveInt`...), each with one hook that says what is wrong (:func:`register_rule`);
the rules themselves are :class:`Check` values, which a model's fields use as attrs
validators too, so a value built in Python is held to the rule a file's value is.
:func:`structure` turns every failure into one message naming the key and the value, through
:func:`cattrs.transform_error`.

:func:`key_tree` and :func:`find_keys` say which keys of a document a model does not know, so a
caller can warn (a host config) or refuse (a scenario), naming the closest known key.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, TypeVar

import attrs
import cattrs
import cattrs.cols
import cattrs.gen

__all__ = [
    "KEY",
    "NOT_EMPTY",
    "NOT_NEGATIVE",
    "OPAQUE",
    "PORT",
    "POSITIVE",
    "POSITIVE_INT",
    "RATIO",
    "BadValue",
    "Check",
    "NonEmptyStr",
    "NonNegativeFloat",
    "NonNegativeInt",
    "Port",
    "PositiveFloat",
    "PositiveInt",
    "Ratio",
    "WrongType",
    "converter",
    "find_keys",
    "freeze",
    "key_tree",
    "one_of",
    "overlaid",
    "read_toml",
    "refuse_unknown_keys",
    "register_rule",
    "show",
    "structure",
    "thawed",
]

T = TypeVar("T")

Port = Annotated[int, "port"]
"""A TCP port, 1..65535."""
PositiveInt = Annotated[int, "positive"]
NonNegativeInt = Annotated[int, "not negative"]
PositiveFloat = Annotated[float, "positive"]
NonNegativeFloat = Annotated[float, "not negative"]
Ratio = Annotated[float, "ratio"]
"""A number from 0 to 1."""
NonEmptyStr = Annotated[str, "not empty"]
"""A string with something besides spaces in it."""

KEY = "toml_key"
"""``attrs.field(metadata={KEY: "from"})``: the field's key in TOML, where its name cannot be."""
OPAQUE = "opaque"
"""``attrs.field(metadata={OPAQUE: True})``: a table passed on whole, whose keys are not checked."""


def show(value: object, *, limit: int = 60) -> str:
    """Render a TOML value for a message: strings quoted, tables named, long values cut."""
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


def freeze(value: Any) -> Any:
    """Return ``value`` with every table as a read-only mapping and every array as a tuple."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    return value


def overlaid(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overlay`` merged in, table by table (a value in ``overlay`` wins), as
    plain dicts and lists: a host config built from layers."""
    result = {key: thawed(value) for key, value in base.items()}
    for key, value in overlay.items():
        have = result.get(key)
        if isinstance(have, Mapping) and isinstance(value, Mapping):
            result[key] = overlaid(have, value)
        else:
            result[key] = thawed(value)
    return result


def thawed(value: Any) -> Any:
    """``value`` with every table as a dict and every array as a list (what :func:`freeze`
    undoes), so that a TOML writer takes it."""
    if isinstance(value, Mapping):
        return {key: thawed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [thawed(item) for item in value]
    return value


def read_toml(path: Path, error: Callable[[str], Exception]) -> dict[str, Any]:
    """Parse the TOML file at ``path``; text that is not UTF-8 or not valid TOML raises
    ``error(message)``, naming the file.

    :raises OSError: the file cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: invalid TOML: {exc}") from None


class WrongType(TypeError):
    """A value of the wrong type: ``expected`` says what was wanted."""

    def __init__(self, expected: str, value: object) -> None:
        super().__init__(f"expected {expected}, got {show(value)}")
        self.expected = expected
        self.value = value


class BadValue(ValueError):
    """A value of the right type that breaks a rule: ``reason`` says which."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(f"{show(value)}: {reason}")
        self.value = value
        self.reason = reason


converter = cattrs.Converter(detailed_validation=True)
"""The converter every hostsim document goes through."""


def _int(value: object, _: object = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WrongType("an integer", value)
    return value


def _float(value: object, _: object = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WrongType("a number", value)
    if not math.isfinite(value):
        raise BadValue(value, "must be a finite number")
    return float(value)


def _str(value: object, _: object = None) -> str:
    if not isinstance(value, str):
        raise WrongType("a string", value)
    return value


def _bool(value: object, _: object = None) -> bool:
    if not isinstance(value, bool):
        raise WrongType("true or false", value)
    return value


@attrs.frozen
class Check:
    """A rule a value keeps, and what a message says when it does not (``reason``).

    One rule serves both sides of a model: the converter checks a TOML value with it
    (:func:`register_rule`), and a model's field checks a Python value with it, as an attrs
    validator: ``attrs.field(validator=POSITIVE)`` raises ``ValueError("name = 0: must be a
    positive number")``.
    """

    ok: Callable[[Any], bool]
    reason: str

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        """Check a model's field (the attrs validator protocol)."""
        if not self.ok(value):
            raise ValueError(f"{attribute.name} = {show(value)}: {self.reason}")


PORT = Check(lambda v: 1 <= v <= 65535, "must be 1..65535")
POSITIVE_INT = Check(lambda v: v > 0, "must be a positive integer")
POSITIVE = Check(lambda v: 0 < v < math.inf, "must be a positive number")
NOT_NEGATIVE = Check(lambda v: 0 <= v < math.inf, "must be zero or more")
RATIO = Check(lambda v: 0 <= v <= 1, "must be between 0 and 1")
NOT_EMPTY = Check(lambda v: bool(v.strip()), "must not be empty")


def one_of(choices: Iterable[object], reason: str) -> Check:
    """The check that a value is one of ``choices``."""
    allowed = tuple(choices)
    return Check(lambda v: v in allowed, reason)


def _checked(base: Callable[[object], T], check: Check) -> Callable[[object, object], T]:
    def hook(value: object, _: object = None) -> T:
        checked = base(value)
        if not check.ok(checked):
            raise BadValue(value, check.reason)
        return checked

    return hook


def register_rule(type_: Any, hook: Callable[[object, object], Any]) -> None:
    """Structure ``type_`` (an ``Annotated`` type) with ``hook``."""
    converter.register_structure_hook_factory(lambda t: t == type_, lambda _: hook)


for _type, _hook in [
    (int, _int),
    (float, _float),
    (str, _str),
    (bool, _bool),
]:
    converter.register_structure_hook(_type, _hook)

register_rule(Port, _checked(_int, PORT))
register_rule(PositiveInt, _checked(_int, POSITIVE_INT))
register_rule(NonNegativeInt, _checked(_int, NOT_NEGATIVE))
register_rule(PositiveFloat, _checked(_float, POSITIVE))
register_rule(NonNegativeFloat, _checked(_float, NOT_NEGATIVE))
register_rule(Ratio, _checked(_float, RATIO))
register_rule(NonEmptyStr, _checked(_str, NOT_EMPTY))


@converter.register_structure_hook_factory(attrs.has)
def _table_hook(cls: type[Any]) -> Callable[[object, object], Any]:
    renames = {
        field.name: cattrs.gen.override(rename=field.metadata[KEY])
        for field in attrs.fields(cls)
        if KEY in field.metadata
    }
    structure_fields = cattrs.gen.make_dict_structure_fn(cls, converter, **renames)  # type: ignore[arg-type]

    def hook(value: object, _: object = None) -> Any:
        if not isinstance(value, Mapping):
            raise WrongType("a table", value)
        return structure_fields(value, cls)

    return hook


def _is_array(type_: Any) -> bool:
    args = typing.get_args(type_)
    return typing.get_origin(type_) is tuple and len(args) == 2 and args[1] is Ellipsis


@converter.register_structure_hook_factory(_is_array)
def _array_hook(type_: Any) -> Callable[[object, object], Any]:
    structure_items = cattrs.cols.homogenous_tuple_structure_factory(type_, converter)

    def hook(value: object, _: object = None) -> Any:
        if not isinstance(value, list | tuple):
            raise WrongType("an array", value)
        return structure_items(value, type_)

    return hook


def _is_mapping(type_: Any) -> bool:
    return typing.get_origin(type_) is Mapping


@converter.register_structure_hook_factory(_is_mapping)
def _mapping_hook(type_: Any) -> Callable[[object, object], Any]:
    key_type, value_type = typing.get_args(type_)
    if value_type is Any:

        def whole(value: object, _: object = None) -> Any:
            if not isinstance(value, Mapping):
                raise WrongType("a table", value)
            return freeze(value)

        return whole
    structure_items = cattrs.cols.mapping_structure_factory(
        dict[key_type, value_type],  # type: ignore[valid-type]
        converter,
    )

    def hook(value: object, _: object = None) -> Any:
        if not isinstance(value, Mapping):
            raise WrongType("a table", value)
        return MappingProxyType(structure_items(value, type_))

    return hook


def _is_literal(type_: Any) -> bool:
    return typing.get_origin(type_) is Literal


@converter.register_structure_hook_factory(_is_literal)
def _literal_hook(type_: Any) -> Callable[[object, object], Any]:
    choices = typing.get_args(type_)
    reason = "must be " + " or ".join(show(c) for c in choices)

    def hook(value: object, _: object = None) -> Any:
        if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
            raise BadValue(value, reason)
        return value

    return hook


def structure(data: object, cls: type[T], *, where: str, error: Callable[[str], Exception]) -> T:
    """Structure ``data`` as ``cls``; on failure raise ``error(message)``.

    The message starts with ``where`` (the file, and the place in it) and names each wrong key
    and its value: ``node.toml: port = 70000: must be 1..65535``.
    """
    try:
        return converter.structure(data, cls)
    except Exception as exc:  # cattrs wraps whatever a hook or a model raised
        problems = cattrs.transform_error(exc, format_exception=_describe)
        raise error(f"{where}: " + "; ".join(_render(p) for p in problems)) from None


def _describe(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, BadValue):
        return f"\0= {show(exc.value)}: {exc.reason}"
    if isinstance(exc, KeyError):
        return "missing (required)"
    if isinstance(exc, WrongType | ValueError | TypeError):
        return str(exc)
    return cattrs.v.format_exception(exc, type_)


_NAMES_A_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]* = ")
_STEP = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\]")


def _render(problem: str) -> str:
    """``"= 70000: must be 1..65535 @ $.port"`` -> ``"port = 70000: must be 1..65535"``."""
    message, _, path = problem.rpartition(" @ ")
    label = toml_label(list(_steps(path.removeprefix("$"))))
    if message.startswith("\0"):
        return f"{label} {message[1:]}" if label else message[3:]
    if _NAMES_A_KEY.match(message) and label:  # a model's own check, naming one of its keys
        keys = [s for s in _steps(path.removeprefix("$")) if isinstance(s, str)]
        return f"[{'.'.join(keys)}] {message}"
    return f"{label}: {message}" if label else message


def _steps(path: str) -> Iterator[str | int]:
    for match in _STEP.finditer(path):
        key, index, quoted = match.groups()
        if key is not None:
            yield key
        elif index is not None:
            yield int(index)
        else:
            yield str(quoted[1:-1])


def toml_label(steps: list[str | int]) -> str:
    """How a message names a place in a document: ``[network.persistence] path``,
    ``bootstrap_nodes[1]``, ``[realm]``."""
    keys = [s for s in steps if isinstance(s, str)]
    if not keys:
        return ""
    last = max(i for i, s in enumerate(steps) if isinstance(s, str))
    leaf = _bare(str(steps[last])) + "".join(f"[{s}]" for s in steps[last + 1 :])
    tables = [_bare(s) for s in steps[:last] if isinstance(s, str)]
    if not tables:
        return leaf
    return f"[{'.'.join(tables)}] {leaf}"


def _bare(key: str) -> str:
    """A key as TOML writes it: bare when it can be, else quoted."""
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

KeyTree = Mapping[str, "KeyTree | str"]
"""The keys a table may hold: a nested table's keys, or a tag for a value (``"used"``...)."""


def key_tree(cls: type[Any], tag: str = "used") -> dict[str, KeyTree | str]:
    """The keys of the TOML table that ``cls`` models, nested tables included.

    A value is tagged ``tag``, a field marked :data:`OPAQUE` is tagged ``"opaque"``.
    """
    attrs.resolve_types(cls)
    tree: dict[str, KeyTree | str] = {}
    for field in attrs.fields(cls):
        inner = [t for t in (field.type, *typing.get_args(field.type)) if attrs.has(t)]
        key = field.metadata.get(KEY, field.name)
        if field.metadata.get(OPAQUE):
            tree[key] = OPAQUE
        elif inner:
            tree[key] = key_tree(inner[0], tag)
        else:
            tree[key] = tag
    return tree


def merge_trees(*trees: KeyTree) -> dict[str, KeyTree | str]:
    """The union of key trees; where one has a table and another a value, the table wins."""
    merged: dict[str, KeyTree | str] = {}
    for tree in trees:
        for key, sub in tree.items():
            have = merged.get(key)
            if isinstance(have, Mapping) and isinstance(sub, Mapping):
                merged[key] = merge_trees(have, sub)
            elif have is None or isinstance(sub, Mapping):
                merged[key] = sub
    return merged


@attrs.frozen
class FoundKey:
    """A key of a document: where it is, what the tree says of it, and for an unknown key the
    closest known one."""

    label: str
    tag: str
    closest: str | None = None
    known: tuple[str, ...] = ()
    """For an unknown key, the keys its table may hold."""


def find_keys(data: Mapping[str, Any], tree: KeyTree, tags: frozenset[str]) -> list[FoundKey]:
    """The keys of ``data`` whose tag is in ``tags`` (``"unknown"`` for keys the tree lacks)."""
    found: list[FoundKey] = []
    _walk(data, tree, [], tags, found)
    return found


def _walk(
    data: Mapping[str, Any],
    tree: KeyTree,
    path: list[str | int],
    tags: frozenset[str],
    found: list[FoundKey],
) -> None:
    for key, value in data.items():
        sub = tree.get(key)
        here = [*path, key]
        if sub is None:
            if "unknown" in tags:
                close = difflib.get_close_matches(key, list(tree), n=1, cutoff=0.6)
                closest = close[0] if close else None
                found.append(FoundKey(toml_label(here), "unknown", closest, tuple(tree)))
        elif isinstance(sub, Mapping):
            if isinstance(value, Mapping):
                _walk(value, sub, here, tags, found)
        elif sub in tags:
            found.append(FoundKey(toml_label(here), sub))


def refuse_unknown_keys(
    data: Mapping[str, Any], tree: KeyTree, *, where: str, error: Callable[[str], Exception]
) -> None:
    """Raise ``error(message)`` for the first key of ``data`` that ``tree`` does not hold."""
    for key in find_keys(data, tree, frozenset({"unknown"})):
        hint = f"did you mean {key.closest}?" if key.closest else f"known: {', '.join(key.known)}"
        raise error(f"{where}: unknown key {key.label} ({hint})")
