"""Reading TOML documents into attrs models: the one cattrs converter hostsim uses, and its errors.

Host configs and both scenario formats are structured by :data:`converter`. It is strict where
TOML is loose for Python: an integer is never a bool, a string is never an array, a table is a
table. Checked values are spelled as :data:`typing.Annotated` types (:data:`Port`,
:data:`PositiveInt`...), each with one hook that says what is wrong (:func:`register_rule`);
the rules themselves are :class:`Check` values, which a model's fields use as attrs
validators too, so a value built in Python is held to the rule a file's value is. An integer
key with bounds is typed ``Annotated[int, IntRange(low, high)]``: the converter checks it, and
anyone can read the bounds from the model (:func:`int_range`). Every integer is at most 64
bits, as TOML's are, and a number too large for a float is a bad value, never an
``OverflowError``.
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
    "IntRange",
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
    "int_range",
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
    elif isinstance(value, int):
        text = _int_text(value, limit)
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


_DIGITS_PER_BIT = math.log10(2)


def _int_text(value: int, limit: int) -> str:
    """An integer's decimal digits, or only its first ``limit`` and a few when it has many more
    (Python writes at most 4,300 digits of an integer, and a message needs far fewer)."""
    extra = int(value.bit_length() * _DIGITS_PER_BIT) - limit - 5
    if extra <= 0:
        return str(value)
    sign = "-" if value < 0 else ""
    return sign + str(abs(value) // 10**extra)


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
    except ValueError:  # an integer with more digits than Python reads (sys.int_info)
        raise error(f"{path}: {_too_long(text)}") from None


_LONG_INTEGER = re.compile(r"[0-9][0-9_]*")
_TABLE_HEADER = re.compile(r"^[ \t]*\[+[ \t]*([^\]\n]+?)[ \t]*\]+", re.MULTILINE)


def _too_long(text: str) -> str:
    """Name the line of the longest decimal integer in ``text`` (the one tomllib could not
    read), its table and the start of its value: ``line 8: [discovery] request_want =
    99999...: an integer of 5000 digits, too long to read``."""
    longest = max(_LONG_INTEGER.finditer(text), key=lambda m: m.end() - m.start(), default=None)
    if longest is None:
        return "invalid TOML: a number too long to read"
    digits = len(longest.group().replace("_", ""))
    line = text.count("\n", 0, longest.start()) + 1
    start = text.rfind("\n", 0, longest.start()) + 1
    where = text[start:].partition("\n")[0].strip()
    if len(where) > 60:
        where = where[:57] + "..."
    tables = [m.group(1) for m in _TABLE_HEADER.finditer(text, 0, start)]
    table = f"[{tables[-1]}] " if tables else ""
    return f"line {line}: {table}{where}: an integer of {digits} digits, too long to read"


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


INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
"""TOML's integers are 64-bit: a larger one is a bad value, whatever its key."""


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WrongType("an integer", value)
    return value


def _int(value: object, _: object = None) -> int:
    whole = _whole(value)
    if not INT64_MIN <= whole <= INT64_MAX:
        raise BadValue(value, "must be a 64-bit integer, as TOML's are")
    return whole


def _float(value: object, _: object = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WrongType("a number", value)
    try:
        number = float(value)
    except OverflowError:  # an integer past the largest float
        raise BadValue(value, "must be a finite number") from None
    if not math.isfinite(number):
        raise BadValue(value, "must be a finite number")
    return number


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


@attrs.frozen
class IntRange:
    """The integers ``low..high``: the rule of an integer key, kept in its type.

    An integer key is typed ``Annotated[int, IntRange(low, high)]``: the converter checks a
    TOML value with it, and a model's field may use it as an attrs validator, as a
    :class:`Check`. A value outside says ``must be low..high``, or ``below`` for one under
    ``low`` when given (``must be a positive integer`` says more than ``must be 1..90``).
    """

    low: int
    high: int
    below: str | None = None

    def problem(self, value: int) -> str | None:
        """Why ``value`` breaks the rule, or None."""
        if value < self.low and self.below is not None:
            return self.below
        if not self.low <= value <= self.high:
            return f"must be {self.low}..{self.high}"
        return None

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        """Check a model's field (the attrs validator protocol)."""
        if (reason := self.problem(value)) is not None:
            raise ValueError(f"{attribute.name} = {show(value)}: {reason}")


def int_range(type_: Any) -> IntRange | None:
    """The :class:`IntRange` of an ``Annotated[int, IntRange(...)]`` type, or None."""
    if typing.get_origin(type_) is not Annotated:
        return None
    found = [m for m in typing.get_args(type_)[1:] if isinstance(m, IntRange)]
    return found[0] if found else None


PORT = IntRange(1, 65535)
Port = Annotated[int, PORT]
"""A TCP port, 1..65535."""
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


def _ranged(type_: Any) -> Callable[[object, object], int]:
    rule = int_range(type_)
    assert rule is not None

    def hook(value: object, _: object = None) -> int:
        checked = _whole(value)  # any size: the range says what is wrong with a huge one
        if (reason := rule.problem(checked)) is not None:
            raise BadValue(value, reason)
        return checked

    return hook


converter.register_structure_hook_factory(lambda t: int_range(t) is not None, _ranged)
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
        args = (field.type, *typing.get_args(field.type))
        inner = [t for t in args if isinstance(t, type) and attrs.has(t)]
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
