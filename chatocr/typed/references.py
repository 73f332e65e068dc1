"""What a JSON Schema may ask of chatocr before any work is done on it: its size, its depth, and its
references.

A schema never makes chatocr fetch or read anything. Every `$ref` (and `$dynamicRef`,
`$recursiveRef`) must point inside the schema document itself: `#`, a JSON pointer `#/$defs/Item`
that resolves, or an `#anchor` the document declares. `http://`, `https://`, `file://`, a relative
file name or a pointer to nothing is a SchemaError naming the reference, raised before the schema
is used; and the validator is built on a `referencing` registry whose retrieve function refuses
every URI (`no_retrieval_registry`), so nothing the static check could miss is fetched either.

The limits, checked in one pass over the document before any other work:

    MAX_SCHEMA_BYTES            a schema file's size (`--schema schema.json`)
    MAX_SCHEMA_NODES            JSON values in the document (objects, arrays, strings, numbers...)
    MAX_SCHEMA_DEPTH            nesting of objects and arrays in the document
    MAX_SCHEMA_EXPANDED_NODES   values once every local `$ref` is replaced by what it points at:
                                a 3 KB schema whose definitions each refer twice to the next one
                                would expand to billions (a reference cycle counts once)
    MAX_SCHEMA_EXPANDED_DEPTH   nesting once references are replaced

A real schema (a pydantic model's, 50 fields with 10 line-item keys) has about a thousand values.
"""

from __future__ import annotations

from typing import Any, NoReturn
from urllib.parse import unquote

from chatocr.errors import SchemaError

__all__ = [
    "MAX_SCHEMA_BYTES",
    "MAX_SCHEMA_DEPTH",
    "MAX_SCHEMA_EXPANDED_DEPTH",
    "MAX_SCHEMA_EXPANDED_NODES",
    "MAX_SCHEMA_NODES",
    "check_references",
    "check_schema_size",
    "no_retrieval_registry",
    "resolve_pointer",
]

MAX_SCHEMA_BYTES = 1_000_000
MAX_SCHEMA_NODES = 20_000
MAX_SCHEMA_DEPTH = 32
MAX_SCHEMA_EXPANDED_NODES = 100_000
MAX_SCHEMA_EXPANDED_DEPTH = 64

_REF_KEYS = ("$ref", "$dynamicRef", "$recursiveRef")
# Keywords whose values are data, not schemas: a {"$ref": ...} inside them is an instance, never followed.
_DATA_KEYS = frozenset({"enum", "const", "default", "examples", "example"})
_DEFINITIONS = ("$defs", "definitions")
_HINT = "Keep every definition in the schema document (under $defs) and refer to it as #/$defs/Name."


def check_schema_size(schema: Any) -> None:
    """SchemaError when the document holds more than MAX_SCHEMA_NODES values or nests deeper than
    MAX_SCHEMA_DEPTH; counted iteratively, stopping at the first limit passed."""
    nodes, stack = 0, [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_SCHEMA_NODES:
            raise SchemaError(
                f"The JSON Schema holds more than {MAX_SCHEMA_NODES:,} values.",
                hint="A schema of the fields to extract is far smaller; check that the right file was given.",
            )
        if isinstance(node, (dict, list)):
            if depth > MAX_SCHEMA_DEPTH:
                raise SchemaError(
                    f"The JSON Schema nests deeper than {MAX_SCHEMA_DEPTH} levels.",
                    hint="chatocr extracts one level of nested objects; flatten the schema.",
                )
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))


def _refuse(ref: Any, why: str) -> NoReturn:
    raise SchemaError(
        f"The JSON Schema's reference {ref!r} {why}; chatocr never fetches or reads a reference.", hint=_HINT
    )


def resolve_pointer(root: Any, ref: str) -> Any:
    """What the local reference `ref` (`#`, `#/a/b`, with ~0 ~1 and %-escapes) points at in `root`;
    SchemaError when it points at nothing."""
    target = root
    if ref in ("#", "#/"):
        return root
    for raw in ref[2:].split("/"):
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            _refuse(ref, "points at nothing in the schema")
    return target


def _schema_children(node: Any) -> list[Any]:
    """The values under `node` that are schemas or hold schemas (not data, not definitions)."""
    if isinstance(node, list):
        return list(node)
    if isinstance(node, dict):
        return [v for k, v in node.items() if k not in _DATA_KEYS and k not in _DEFINITIONS]
    return []


def _anchors(schema: Any) -> set[str]:
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in ("$anchor", "$dynamicAnchor"):
                if isinstance(node.get(key), str):
                    found.add(node[key])
            stack.extend(v for k, v in node.items() if k not in _DATA_KEYS)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _target(root: Any, ref: Any, anchors: set[str]) -> Any:
    """The node a reference points at inside the document (the root for an anchor: checked, not followed)."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        _refuse(ref, "points outside the schema document")
    if ref in ("#", "") or ref.startswith("#/"):
        return resolve_pointer(root, ref)
    if unquote(ref[1:]) not in anchors:
        _refuse(ref, "names an anchor the schema does not declare")
    return None


def _check_nested_ids(schema: dict[str, Any]) -> None:
    """A `$id` below the root would make `#/...` under it mean another document: refused."""
    stack = [child for child in _schema_children(schema)]
    for definitions in _DEFINITIONS:
        if isinstance(schema.get(definitions), dict):
            stack.extend(schema[definitions].values())
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("$id"), str) and node["$id"] not in ("", "#"):
                _refuse(node["$id"], "is a $id below the root, which makes references point at another document")
            stack.extend(_schema_children(node))
            for definitions in _DEFINITIONS:
                if isinstance(node.get(definitions), dict):
                    stack.extend(node[definitions].values())
        elif isinstance(node, list):
            stack.extend(node)


def check_references(schema: dict[str, Any]) -> None:
    """SchemaError for a reference outside the document (module docstring), or when replacing the
    local references by what they point at would pass MAX_SCHEMA_EXPANDED_NODES values or
    MAX_SCHEMA_EXPANDED_DEPTH levels. Run after check_schema_size."""
    _check_nested_ids(schema)
    anchors = _anchors(schema)
    # Every reference in the document, used or not (a definition no field names is still checked).
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in _REF_KEYS:
                if key in node and not isinstance(node[key], dict):
                    _target(schema, node[key], anchors)
            stack.extend(v for k, v in node.items() if k not in _DATA_KEYS)
        elif isinstance(node, list):
            stack.extend(node)
    size, depth = _expanded(schema, anchors)
    if size > MAX_SCHEMA_EXPANDED_NODES or depth > MAX_SCHEMA_EXPANDED_DEPTH:
        raise SchemaError(
            f"The JSON Schema's references expand to more than {MAX_SCHEMA_EXPANDED_NODES:,} values or "
            f"{MAX_SCHEMA_EXPANDED_DEPTH} levels (definitions that refer to each other over and over).",
            hint="Refer to each definition where it is used; a schema of fields to extract needs few references.",
        )


def _expanded(root: dict[str, Any], anchors: set[str]) -> tuple[int, int]:
    """(values, depth) of the document with its local references replaced by their targets: an
    iterative post-order walk, each node's result remembered (a definition used twice is counted
    twice without being walked twice); a reference back to a node on the current path (a cycle)
    counts as one value."""
    done: dict[int, tuple[int, int]] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    cap = MAX_SCHEMA_EXPANDED_NODES + 1
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        children = _children_with_refs(root, node, anchors)
        if leaving:
            on_path.discard(key)
            sizes = [done.get(id(c), (1, 1)) if id(c) not in on_path else (1, 1) for c in children]
            size = min(cap, 1 + sum(s for s, _ in sizes))
            done[key] = (size, 1 + max((d for _, d in sizes), default=0))
            continue
        if key in done or key in on_path:
            continue
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, (dict, list)) and id(c) not in done)
    return done.get(id(root), (1, 1))


def _children_with_refs(root: Any, node: Any, anchors: set[str]) -> list[Any]:
    children = _schema_children(node)
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        target = _target(root, node["$ref"], anchors)
        if isinstance(target, (dict, list)):
            children.append(target)
    return children


def _no_retrieval(uri: str) -> NoReturn:
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # an attrs class mypy cannot see into


def no_retrieval_registry() -> Any:
    """A `referencing` registry that never retrieves anything: what the validator is built on."""
    from referencing import Registry

    return Registry(retrieve=_no_retrieval)  # type: ignore[call-arg]
