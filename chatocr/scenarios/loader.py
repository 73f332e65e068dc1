"""Load scenarios from YAML with errors that name the file, the line and the fix.

PyYAML's composed node tree keeps every key's and value's position; pydantic's errors give the path
of each problem inside the data. Walking the path through the node tree gives the line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from chatocr.errors import ScenarioError
from chatocr.resources import builtin_scenarios_dir, user_dirs
from chatocr.scenarios.model import Example, FieldSpec, ItemField, Scenario, ScenarioProblems

__all__ = ["ScenarioLibrary", "load_scenario_file", "load_scenario_text", "load_scenarios"]

SCENARIO_PATH_ENV = "CHATOCR_SCENARIO_PATH"

Loc = tuple[str | int, ...]

# Limits that keep a hostile or broken scenario file from costing memory or minutes, each refused
# with a ScenarioError naming the file: its size, the number of values once YAML aliases are
# expanded (a "billion laughs" bomb is a few lines that expand to billions), and nesting depth.
MAX_SCENARIO_BYTES = 5 * 1024 * 1024
MAX_YAML_VALUES = 200_000
MAX_YAML_DEPTH = 64


class _TextNumbersLoader(yaml.SafeLoader):
    """YAML without implicit int/float: `044002100111`, `13:27:45` and `9000.00` stay the text
    the author wrote (YAML 1.1 would read an octal number, a sexagesimal 48465 and 9000.0).
    Scenario values are copied verbatim from documents, so they must stay strings."""


_TextNumbersLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _refuse(source: str, line: int, message: str, hint: str | None = None) -> ScenarioError:
    problem = f"{source}:{line}: {message}"
    return ScenarioError(problem, problems=[problem], hint=hint)


def _check_tree(root: yaml.Node | None, source: str) -> None:
    """Refuse duplicate keys (both lines named), alias bombs and deep nesting, before constructing
    any Python value. The node tree is a DAG (an alias is the same node object), walked once per
    node; the expanded size is computed from the children's sizes without expanding anything."""
    if root is None:
        return
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    active: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            active.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(kid)] for kid in kids)
            depth[key] = 1 + max((depth[id(kid)] for kid in kids), default=0)
            if size[key] > MAX_YAML_VALUES:
                raise _refuse(
                    source,
                    node.start_mark.line + 1,
                    f"the YAML expands to more than {MAX_YAML_VALUES} values (aliases repeated inside aliases?)",
                    hint="Write the values out; a scenario needs no aliases.",
                )
            if depth[key] > MAX_YAML_DEPTH:
                raise _refuse(source, node.start_mark.line + 1, f"values nest deeper than {MAX_YAML_DEPTH} levels")
            continue
        if key in size:
            continue
        if key in active:
            raise _refuse(source, node.start_mark.line + 1, "a value contains itself (a recursive alias)")
        active.add(key)
        if isinstance(node, yaml.MappingNode):
            _check_duplicates(node, source)
        stack.append((node, True))
        stack.extend((kid, False) for kid in _children(node) if id(kid) not in size)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_duplicates(node: yaml.MappingNode, source: str) -> None:
    """PyYAML keeps the last of two equal keys silently; a scenario must not (which was meant?)."""
    seen: dict[str, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        line = key_node.start_mark.line + 1
        if key_node.value in seen:
            raise _refuse(
                source,
                line,
                f"duplicate key {key_node.value!r} (first at line {seen[key_node.value]}, again at line {line})",
                hint="Keep one of the two: YAML would silently use the last.",
            )
        seen[key_node.value] = line


def load_scenario_text(text: str, source: str = "<string>") -> Scenario:
    """Parse and validate one scenario from YAML text; `source` names it in errors."""
    if len(text) > MAX_SCENARIO_BYTES:
        raise _refuse(
            source,
            1,
            f"the file is {len(text)} characters, over the limit of {MAX_SCENARIO_BYTES}",
            hint="A scenario needs fields and a few examples; move bulk data elsewhere.",
        )
    try:
        node = yaml.compose(text, Loader=_TextNumbersLoader)
        _check_tree(node, source)
        data = yaml.load(text, Loader=_TextNumbersLoader)
    except RecursionError:
        raise _refuse(source, 1, f"values nest too deeply (the limit is {MAX_YAML_DEPTH} levels)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problem = f"{source}:{line}: YAML syntax error: {exc.problem or exc}"
        raise ScenarioError(
            f"{problem}", problems=[problem], hint="Check indentation and quoting around that line."
        ) from exc
    except yaml.YAMLError as exc:  # e.g. a control character the reader refuses
        raise _refuse(source, 1, f"not readable YAML: {exc}", hint="Save the file as plain UTF-8 YAML text.") from exc
    if not isinstance(data, dict):
        problem = f"{source}:1: a scenario file must be a mapping of keys (name, title, fields, ...)"
        raise ScenarioError(problem, problems=[problem])
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = _describe(exc, node, source)
        plural = "s" if len(problems) > 1 else ""
        raise ScenarioError(
            f"{source}: {len(problems)} problem{plural} in the scenario:\n  " + "\n  ".join(problems),
            problems=problems,
        ) from exc


def load_scenario_file(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_SCENARIO_BYTES:
            raise _refuse(
                str(path),
                1,
                f"the file is {path.stat().st_size} bytes, over the limit of {MAX_SCENARIO_BYTES}",
                hint="A scenario needs fields and a few examples.",
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ScenarioError(f"{path}: no such scenario file", hint="Check the path.") from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text", hint="Save the scenario file as UTF-8.") from exc
    except OSError as exc:
        raise ScenarioError(
            f"{path}: cannot read the scenario file: {exc.strerror or exc}", hint="Check that it is a readable file."
        ) from exc
    return load_scenario_text(text, str(path))


def _describe(exc: ValidationError, root: yaml.Node | None, source: str) -> list[str]:
    problems: list[str] = []
    errors = exc.errors()
    failed_locs = [tuple(error["loc"]) for error in errors]
    for error in errors:
        loc: Loc = tuple(error["loc"])
        if error["type"] == "too_short" and any(
            other[: len(loc)] == loc and len(other) > len(loc) for other in failed_locs
        ):
            continue  # "fields: at least 1 item" only because every item failed: noise

        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ScenarioProblems):
            for problem in cause.problems:
                problems.append(_at(source, root, (*loc, *problem.path), problem.message))
            continue
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            allowed = _allowed_keys(loc[:-1])
            guess = difflib.get_close_matches(key, allowed, n=1)
            suggestion = f" (did you mean {guess[0]!r}?)" if guess else f"; allowed keys: {', '.join(allowed)}"
            problems.append(_at(source, root, loc, f"unknown key {key!r}{suggestion}", key_line=True))
        elif kind == "missing":
            problems.append(_at(source, root, loc[:-1], f"missing required key {loc[-1]!r}"))
        elif kind == "value_error":
            message = str(cause) if cause is not None else error["msg"]
            problems.append(_at(source, root, loc, message))
        else:
            value = error.get("input")
            shown = f" (got {value!r})" if not isinstance(value, (dict, list)) else ""
            problems.append(_at(source, root, loc, f"{error['msg']}{shown}"))
    return problems


def _at(source: str, root: yaml.Node | None, loc: Loc, message: str, *, key_line: bool = False) -> str:
    line = _line_of(root, loc, key_line=key_line)
    where = _path_text(loc)
    return f"{source}:{line}: {where + ': ' if where else ''}{message}"


def _path_text(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(root: yaml.Node | None, loc: Loc, *, key_line: bool = False) -> int:
    """1-based line of the node at `loc`; the deepest existing ancestor when the path runs out."""
    node = root
    if node is None:
        return 1
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    child = key_node if key_line and part == loc[-1] else value_node
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _allowed_keys(loc: Loc) -> list[str]:
    """The keys allowed in the mapping at `loc` (for did-you-mean suggestions)."""
    model: type[BaseModel] = Scenario
    steps = [part for part in loc if isinstance(part, str)]
    nested: dict[tuple[type[BaseModel], str], type[BaseModel]] = {
        (Scenario, "fields"): FieldSpec,
        (Scenario, "examples"): Example,
        (FieldSpec, "items"): ItemField,
    }
    for step in steps:
        found = nested.get((model, step))
        if found is None:
            return []
        model = found
    return list(model.model_fields)


class ScenarioLibrary:
    """The scenarios available to a run, by name. Later directories override earlier ones, so a
    user's `vat_invoice.yaml` replaces the built-in one; `overridden` records each replacement."""

    def __init__(self, scenarios: Iterable[Scenario] = ()) -> None:
        self._scenarios: dict[str, Scenario] = {}
        self.sources: dict[str, Path | None] = {}
        self.version = 0  # counts changes: what indexes the scenarios (the example bank) rebuilds on
        self.overridden: list[tuple[str, Path | None]] = []
        for scenario in scenarios:
            self.add(scenario)

    def add(self, scenario: Scenario, source: Path | None = None) -> None:
        if scenario.name in self._scenarios:
            self.overridden.append((scenario.name, self.sources.get(scenario.name)))
        self._scenarios[scenario.name] = scenario
        self.sources[scenario.name] = source
        self.version += 1

    def get(self, name: str) -> Scenario:
        try:
            return self._scenarios[name]
        except KeyError:
            known = ", ".join(sorted(self._scenarios)) or "(none)"
            # Every near tie, not only the best: related scenarios share words ("recipt" is as
            # close to cn_receipt as to taxi_receipt).
            scored = sorted(
                ((difflib.SequenceMatcher(None, name, known).ratio(), known) for known in self._scenarios),
                reverse=True,
            )
            guess = [known for ratio, known in scored[:3] if ratio >= 0.6 and ratio >= scored[0][0] - 0.1]
            hint = f"Did you mean {' or '.join(repr(g) for g in guess)}? " if guess else ""
            raise ScenarioError(
                f"No scenario named {name!r}.",
                hint=f"{hint}Known scenarios: {known}. Add your own with CHATOCR_SCENARIO_PATH.",
            ) from None

    def resolve(self, spec: str | Path | Scenario) -> Scenario:
        """A scenario by name, or from a YAML file (`--scenario my_receipt.yaml`), which then joins
        the library (replacing a scenario of the same name, as a user directory would)."""
        if isinstance(spec, Scenario):
            if self._scenarios.get(spec.name) is not spec:
                self.add(spec)
            return spec
        text = str(spec)
        path = Path(text).expanduser()
        if (
            isinstance(spec, Path)
            or path.suffix.lower() in (".yaml", ".yml")
            or (text not in self._scenarios and path.is_file())
        ):
            scenario = load_scenario_file(path)
            if self.sources.get(scenario.name) != path or scenario.name not in self._scenarios:
                self.add(scenario, path)
            return scenario
        return self.get(text)

    def __contains__(self, name: object) -> bool:
        return name in self._scenarios

    def __iter__(self) -> Iterator[Scenario]:
        return iter(self._scenarios.values())

    def __len__(self) -> int:
        return len(self._scenarios)

    def names(self) -> list[str]:
        return list(self._scenarios)


def load_scenarios(
    dirs: Iterable[str | Path] = (), *, include_builtin: bool = True, include_env: bool = True
) -> ScenarioLibrary:
    """Load every `*.yaml`/`*.yml` scenario: built-ins, then `$CHATOCR_SCENARIO_PATH`, then `dirs`.

    Every broken file is reported at once in a single ScenarioError.
    """
    search: list[Path] = []
    if include_builtin:
        search.append(builtin_scenarios_dir())
    if include_env:
        search.extend(user_dirs(SCENARIO_PATH_ENV))
    search.extend(Path(d).expanduser() for d in dirs)
    library = ScenarioLibrary()
    problems: list[str] = []
    for directory in search:
        if not directory.is_dir():
            problems.append(f"{directory}: not a directory of scenario files")
            continue
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            try:
                library.add(load_scenario_file(path), path)
            except ScenarioError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ScenarioError(
            f"{len(problems)} problem(s) loading scenarios:\n  " + "\n  ".join(problems), problems=problems
        )
    return library
