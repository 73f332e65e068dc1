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
from chatocr.scenarios.model import Example, ExampleAnswerError, FieldSpec, ItemField, Scenario

__all__ = ["ScenarioLibrary", "load_scenario_file", "load_scenario_text", "load_scenarios"]

SCENARIO_PATH_ENV = "CHATOCR_SCENARIO_PATH"

Loc = tuple[str | int, ...]


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


def load_scenario_text(text: str, source: str = "<string>") -> Scenario:
    """Parse and validate one scenario from YAML text; `source` names it in errors."""
    try:
        node = yaml.compose(text, Loader=_TextNumbersLoader)
        data = yaml.load(text, Loader=_TextNumbersLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problem = f"{source}:{line}: YAML syntax error: {exc.problem or exc}"
        raise ScenarioError(
            f"{problem}", problems=[problem], hint="Check indentation and quoting around that line."
        ) from exc
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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ScenarioError(f"{path}: no such scenario file", hint="Check the path.") from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text", hint="Save the scenario file as UTF-8.") from exc
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
        if isinstance(cause, ExampleAnswerError):
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
        self.overridden: list[tuple[str, Path | None]] = []
        for scenario in scenarios:
            self.add(scenario)

    def add(self, scenario: Scenario, source: Path | None = None) -> None:
        if scenario.name in self._scenarios:
            self.overridden.append((scenario.name, self.sources.get(scenario.name)))
        self._scenarios[scenario.name] = scenario
        self.sources[scenario.name] = source

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
