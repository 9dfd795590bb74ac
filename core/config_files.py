"""Config files and flag values several configs read: text files (templates, YAML),
a YAML mapping, NAME=AMOUNT lists."""

from __future__ import annotations

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
    return resources
