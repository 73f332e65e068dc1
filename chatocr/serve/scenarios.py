"""A request's scenario over HTTP: a name from the server's library, or the client's own scenario
as YAML text in the request (`scenario_yaml`), never a path.

The Python API and the CLI take a YAML path as a scenario (the file joins the library). Over HTTP
that would read the server's disk on a client's word: the file's text would come back in the
transcript, the scenario would be listed to every other token, and a missing path would tell the
client which files exist. So the service never hands a client's string to `ScenarioLibrary.resolve`:

- `scenario`: a name of the server's library (GET /v1/scenarios), or "auto"; an unknown name is a
  400 decided by the name alone (no file is looked at, whatever the name looks like);
- `scenario_yaml`: a scenario document, at most MAX_INLINE_SCENARIO_BYTES, parsed by the loader
  scenario files use (`load_scenario_text`: the safe YAML loader, no implicit numbers, duplicate
  keys, alias bombs and depth refused) and passed to `ChatOCR.request` as a `Scenario` object,
  which is used for that request alone: it never joins the shared library, so it is never listed
  to another token or used for another request, and its own examples are the ones ranked for it
  (`ExampleBank` keeps a small bank for a scenario outside the library).

A request sending both is refused: which one was meant?
"""

from __future__ import annotations

from typing import Any

from chatocr.api import ChatOCR
from chatocr.errors import ChatOCRError, ScenarioError
from chatocr.extraction.request import AUTO, ExtractionRequest
from chatocr.scenarios.loader import load_scenario_text
from chatocr.scenarios.model import Scenario
from chatocr.serve.errors import ServeError, from_chatocr_error

__all__ = ["MAX_INLINE_SCENARIO_BYTES", "MAX_SCENARIO_NAME", "served_request", "served_scenario"]

# An inline scenario is its fields, instructions and a few examples: the built-in ones are 4-13 KB.
# PyYAML's safe loader is pure Python (~1 MB/s here): 256 KB keeps its parse to a fraction of a
# second in a worker thread. Larger scenarios belong in the server's library (CHATOCR_SCENARIO_PATH).
MAX_INLINE_SCENARIO_BYTES = 256 * 1024
# Longer than any scenario name; bounds the did-you-mean comparison against the library's names.
MAX_SCENARIO_NAME = 128
_SOURCE = "scenario_yaml"  # how an inline scenario's problems are located: "scenario_yaml:3: ..."
_OWN = "Send a name from GET /v1/scenarios, or your own scenario as YAML text in `scenario_yaml`."


def served_scenario(ocr: ChatOCR, name: str | None, yaml_text: str | None) -> Scenario | None:
    """The scenario a request names (None: route each document). Never reads a file."""
    if yaml_text is not None and yaml_text.strip():
        if name is not None and name.strip() not in ("", AUTO):
            raise ServeError(
                400,
                "RequestError",
                "Give `scenario` (a name) or `scenario_yaml` (a scenario document), not both.",
                "Send one of the two: a name from GET /v1/scenarios, or your own scenario as YAML.",
            )
        return inline_scenario(yaml_text)
    if name is None or name.strip() in ("", AUTO):
        return None
    if len(name) > MAX_SCENARIO_NAME:
        raise ServeError(
            400,
            "ScenarioError",
            f"The scenario name is {len(name)} characters long; no scenario has such a name.",
            _OWN,
        )
    try:
        return ocr.library.get(name)  # by name only: a name that looks like a path is just unknown
    except ScenarioError as exc:
        raise ServeError(400, "ScenarioError", exc.message, _hint_over_http(exc.hint)) from None


def _hint_over_http(hint: str) -> str:
    """The library's hint (the names it knows, a did-you-mean) without what only the operator can do."""
    kept = hint.replace("Add your own with CHATOCR_SCENARIO_PATH.", "").strip()
    return f"{kept} Or send your own scenario as YAML text in `scenario_yaml` (a path is never read)."


def inline_scenario(text: str) -> Scenario:
    """The client's scenario document, parsed as scenario files are; a ServeError naming its limit
    or its problems (with their lines in `scenario_yaml`)."""
    if len(text) > MAX_INLINE_SCENARIO_BYTES or len(text.encode("utf-8")) > MAX_INLINE_SCENARIO_BYTES:
        raise ServeError(
            413,
            "ScenarioError",
            f"scenario_yaml is longer than the {MAX_INLINE_SCENARIO_BYTES:,} bytes an inline scenario may have.",
            "A scenario needs its fields and a few examples; a larger one belongs in the server's library "
            "(ask its operator).",
        )
    try:
        return load_scenario_text(text, _SOURCE)
    except ScenarioError as exc:
        raise from_chatocr_error(exc) from None


def served_request(
    ocr: ChatOCR, keys: list[str] | None, scenario: Scenario | None, **options: Any
) -> ExtractionRequest:
    """A request's options resolved by the constructor every caller uses (ChatOCR.request): a
    mistake is a 400 with the same words as anywhere else, before any work is queued. `scenario`
    is what `served_scenario` gave: a library scenario, the request's own, or None."""
    try:
        return ocr.request(keys, scenario, **options)
    except ChatOCRError as exc:
        raise from_chatocr_error(exc) from None
