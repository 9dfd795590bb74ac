"""CLI flags generated from config dataclasses, so every default lives on its config.

A field `max_chars: int = 200_000` with `metadata={"help": ...}` becomes
`--max-chars` (help text, the default shown); the flag's own default is None, so
`config_from_args` passes only what the user typed and the dataclass fills the
rest (and checks it, raising UserError). Booleans are switches (one that defaults
to True also gets `--no-NAME`), tuples take comma-separated values (or repeat the
flag with `metadata={"repeat": True}`, or take several words with
`metadata={"nargs": "+"}`).
"""

from __future__ import annotations

import argparse
import dataclasses


def _kind(field: dataclasses.Field) -> str:
    head = str(field.type).replace(" ", "").split("|")[0]  # "float | None" -> float
    if head.startswith("tuple"):
        return "tuple"
    return head if head in ("bool", "int", "float") else "str"


def _flags(cls, only, prefix):
    for field in dataclasses.fields(cls):
        if only is None or field.name in only:
            yield field, f"{prefix}{field.name}", "--" + f"{prefix}{field.name}".replace("_", "-")


def add_config_arguments(
    parser, cls, *, only: tuple[str, ...] | None = None, prefix: str = "", group=None
) -> None:
    """One flag per field of `cls` (or of `only`); `prefix` namespaces them (embed_ -> --embed-model)."""
    target = group or parser
    for field, dest, flag in _flags(cls, only, prefix):
        kind = _kind(field)
        default = field.default if field.default is not dataclasses.MISSING else None
        shown = ",".join(default) if isinstance(default, tuple) else default
        text = field.metadata.get("help", "")
        if shown not in (None, "", False):
            text = f"{text} (default: {shown})" if text else f"(default: {shown})"
        options = dict(dest=dest, default=None, help=text.replace("%", "%%"))
        if kind == "bool":
            # A True default needs a way off: --name / --no-name.
            action = argparse.BooleanOptionalAction if default is True else "store_true"
            target.add_argument(flag, action=action, **options)
            continue
        if "choices" in field.metadata:
            options["choices"] = field.metadata["choices"]
        if kind == "tuple":
            if field.metadata.get("repeat"):
                target.add_argument(flag, action="append", **options)
            elif field.metadata.get("nargs"):
                target.add_argument(flag, nargs=field.metadata["nargs"], **options)
            else:
                target.add_argument(flag, type=_comma_list, **options)
            continue
        target.add_argument(flag, type={"int": int, "float": float}.get(kind, str), **options)


def config_from_args(cls, args: argparse.Namespace, *, only=None, prefix: str = "", **fixed):
    """An instance of `cls` from the flags the user gave; `fixed` values win."""
    given = {
        field.name: tuple(value) if isinstance(value, list) else value
        for field, dest, _ in _flags(cls, only, prefix)
        if (value := getattr(args, dest, None)) is not None
    }
    return cls(**{**given, **fixed})


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())
