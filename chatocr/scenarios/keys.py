"""The key syntax shared by every command that takes keys (extract, plan, repl /keys, eval,
scenarios new) and by `keys="..."` in the Python API:

    company,date:date,total:amount                  names, optionally typed
    company=the shop's name,total:amount=final total a description after `=`
    gender:enum(男|女),items:list                    enum choices in parentheses; list of strings
    company=Name, as printed; total:amount          `;` between keys when a description has a comma

Types: text (the default), date, amount, number, enum(...), list. An unknown type is an error
naming the valid ones, raised before any OCR or model call (the CLI exits with usage status 2).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from chatocr.errors import ConfigError
from chatocr.scenarios.model import FieldSpec, FieldType

__all__ = ["KEY_SYNTAX", "KEY_TYPES", "as_keys", "parse_key", "parse_keys", "split_keys"]

KEY_TYPES = ("text", "date", "amount", "number", "enum(A|B|...)", "list")
KEY_SYNTAX = "NAME[:TYPE][=DESCRIPTION], comma-separated (';' when a description has a comma)"
_ENUM = re.compile(r"^enum\((?P<choices>.*)\)$", re.S)
# A key names the value the model answers and a column results are written under: a control
# character in it (a NUL, a newline, an escape) is always a mistake, and one a file or a terminal
# would show as something else.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _error(message: str) -> ConfigError:
    return ConfigError(
        message,
        hint=f"Keys are {KEY_SYNTAX}; types: {', '.join(KEY_TYPES)}. "
        'Example: --keys "company=the shop\'s name,date:date,total:amount"',
    )


def parse_key(item: str) -> FieldSpec:
    """One `NAME[:TYPE][=DESCRIPTION]` as a FieldSpec; only what is written is set explicitly
    (`model_fields_set`), so a scenario's field of the same name supplies the rest."""
    head, has_description, description = item.partition("=")
    name, has_type, kind = head.partition(":")
    name, kind = name.strip(), kind.strip()
    if not name:
        raise _error(f"Key {item.strip()!r} has no name.")
    _check_name(name)
    explicit: dict[str, object] = {"name": name}
    if has_description and description.strip():
        explicit["description"] = description.strip()
    if has_type:
        enum = _ENUM.match(kind)
        if enum:
            choices = tuple(c.strip() for c in enum.group("choices").split("|") if c.strip())
            if not choices:
                raise _error(f"Key {name!r}: enum() needs its choices, e.g. {name}:enum(yes|no).")
            explicit.update(type=FieldType.enum, choices=choices)
        elif kind == "enum":
            raise _error(f"Key {name!r}: an enum needs its choices, e.g. {name}:enum(yes|no).")
        elif kind in ("text", "date", "amount", "number", "list"):
            explicit["type"] = FieldType(kind)
        elif kind == "object":
            raise _error(
                f"Key {name!r}: an object's keys cannot be given on the command line; use a scenario or --schema."
            )
        else:
            raise _error(f"Unknown type {kind!r} for key {name!r}: the types are {', '.join(KEY_TYPES)}.")
    return FieldSpec(**explicit)


def _check_name(name: str) -> str:
    if _CONTROL.search(name):
        raise _error(f"Key {name!r} holds a control character.")
    return name


def split_keys(text: str) -> list[str]:
    """The key items of a keys text, unparsed: split on `;` when it has one, else on `,`."""
    separator = ";" if ";" in text else ","
    return [item.strip() for item in text.split(separator) if item.strip()]


def parse_keys(text: str) -> list[FieldSpec]:
    """`company,date:date,total:amount=final total` as FieldSpecs (an empty text gives [])."""
    keys: list[FieldSpec] = []
    seen: set[str] = set()
    for item in split_keys(text):
        key = parse_key(item)
        if key.name.casefold() in seen:
            raise _error(f"Key {key.name!r} is given twice.")
        seen.add(key.name.casefold())
        keys.append(key)
    return keys


def as_keys(keys: Sequence[str | FieldSpec] | str | None) -> list[str | FieldSpec] | None:
    """Keys as the task builder takes them: a keys text parsed; in a list, an item written in the
    key syntax (`total:amount`, `company=...`) parsed, a plain name or a FieldSpec kept."""
    if keys is None:
        return None
    if isinstance(keys, str):
        return list(parse_keys(keys))
    return [(parse_key(k) if ":" in k or "=" in k else _check_name(k)) if isinstance(k, str) else k for k in keys]
