"""Config files and flag values several configs read: text files (templates, YAML),
a YAML mapping, NAME=AMOUNT lists."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path

from core.errors import UserError


def read_text_file(file: str | Path) -> str:
    """A text file a user wrote (a template, a config); not UTF-8 is one line."""
    try:
        return Path(file).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(
            f"{file}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start})"
        ) from None
    except IsADirectoryError:
        raise UserError(f"{file}: a folder, not a file") from None


def read_yaml_mapping(file: Path, what: str) -> dict:
    """The mapping a YAML file holds (an empty file is {}); anything else is one line."""
    import yaml

    try:
        values = yaml.safe_load(read_text_file(file)) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{file}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise UserError(f"{file}: expected a mapping of {what}")
    return values


def parse_resources(text: str, flag: str = "--worker-resources") -> dict[str, float]:
    """ "GPU=1, MEM=2.5" -> {"GPU": 1.0, "MEM": 2.5}; a malformed item is one line."""
    resources = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, sep, amount = item.partition("=")
        try:
            resources[name.strip()] = float(amount)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise UserError(f"{flag}: {item!r} is not NAME=AMOUNT")
        if not 0 <= resources[name.strip()] < float("inf"):
            raise UserError(f"{flag}: {item!r}: the amount must be a finite number >= 0")
    return resources


def check_mapping(cls, values: dict, where: str, *, not_settable: tuple[str, ...] = ()) -> None:
    """The one check of a config mapping against its dataclass, before it is built: a key
    the class has no field for (or one only the code sets) is one line with the nearest
    known key, and each value must have its field's type (`check_types`)."""
    known = sorted({f.name for f in dataclasses.fields(cls)} - set(not_settable))
    for key in values:
        if key not in known:
            raise UserError(
                f"{where}: unknown key {key!r}{did_you_mean(str(key), known)} "
                f"(known: {', '.join(known)})"
            )
    check_types(cls, values, where)


def did_you_mean(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def field_types(cls) -> dict[str, type]:
    """Each field's plain type where it is int, float or str (`int | None` counts as int):
    what a config's own checks convert or compare by, read from the annotations rather
    than from their text."""
    plain = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        base = args[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) else hint
        if len(args) <= 1 and base in (int, float, str):
            plain[name] = base
    return plain


def check_types(cls, values: dict, where: str) -> None:
    """Each value of a config file has its field's type (YAML reads `'3'` as text and
    `yes` as true): one line naming the key, never a crash later or a string as a bool.
    A tuple field takes one value or a list; fields of other types check themselves."""
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        hint = hints.get(key)
        if hint is not None and not _matches(value, hint):
            raise UserError(f"{where}: {key} must be {_describe(hint)}, got {value!r}")


def _matches(value, hint) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        items = value if isinstance(value, list | tuple) else [value]
        return all(_matches(v, args[0]) for v in items)
    if hint is dict or origin is dict:
        return isinstance(value, dict)
    return True


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple:
        return f"{_describe(args[0])} or a list of them"
    if hint is dict or origin is dict:
        return "a mapping"
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
    return names.get(hint, "null" if hint is type(None) else str(hint))
