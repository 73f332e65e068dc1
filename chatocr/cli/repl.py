"""`chatocr repl [IMAGE]`: open a document, read its OCR, extract fields, ask about it.

A small loop in the manner of `llm chat`: commands start with "/", anything else is a question
about the open document (a ChatSession, history kept within the model's budget). A failed command
prints its error and the loop goes on. prompt_toolkit gives line editing, a history file under the
user's data directory and completion of commands, scenario names, keys and paths; when stdin is
not a terminal, lines are read plainly (for scripts).

Every OCR and model call runs as a task on the REPL's event loop: Ctrl-C cancels that call (the
backend stops generating) and returns to the prompt with the session as it was (cli/interrupt.py).
Ctrl-C at the prompt clears the line; at an empty prompt it says how to leave, and a second one
leaves, as does Ctrl-D. Answers stream as they are generated and are then checked against the
document (extraction/answers.py): what is not found there is dimmed and listed; /why shows the
lines an answer rests on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from rich.console import Console
from rich.table import Table

from chatocr.api import ChatOCR, ChatSession
from chatocr.cli.answer_view import AnswerStream, answer_text, unsupported_note
from chatocr.cli.common import (
    KEYS_HELP,
    add_backend_options,
    add_memory_options,
    field_table,
    keys_option,
    make_chatocr,
    review_line,
    summary_line,
)
from chatocr.cli.interrupt import Cancelled, run_cancellable
from chatocr.cli.repl_memory import Corrections, numbered_text
from chatocr.cli.status import StatusLine
from chatocr.cli.suggest import did_you_mean
from chatocr.errors import ChatOCRError, ConfigError, InputError, UserError
from chatocr.extraction.answers import AnswerCheck, check_answer
from chatocr.extraction.grounding import TextIndex
from chatocr.extraction.result import CallRecord, Extraction, usage_of
from chatocr.fileio import atomic_write
from chatocr.llm.registry import available_backends
from chatocr.scenarios.keys import parse_keys, split_keys
from chatocr.secrets import redact

__all__ = ["COMMANDS", "Repl", "history_path", "register"]

COMMANDS: dict[str, tuple[str, str]] = {
    "/open": ("IMAGE", "open a document (OCR it)"),
    "/ocr": ("", "show the document's OCR text in reading order"),
    "/scenario": ("[NAME|auto]", "show or set the scenario for /extract (auto: route each time)"),
    "/keys": ("[k1,k2:type=description|-]", "show or set the keys for /extract (-: the scenario's fields)"),
    "/extract": ("", "extract the keys: value, status, confidence per field"),
    "/fix": ("FIELD VALUE|#N..|-", "correct a field of the last /extract: a value, OCR lines by number, - for none"),
    "/remember": ("", "add this document, its answer with the fixes, to its scenario's memory"),
    "/forget": ("", "take this document out of its scenario's memory"),
    "/why": ("[N]", "what answer N (default: the last) states and the lines it rests on"),
    "/history": ("", "the questions and answers so far"),
    "/usage": ("", "calls, tokens and time of this session"),
    "/model": ("[PROVIDER[:MODEL]]", "show or switch the chat backend (history kept)"),
    "/save": ("FILE", "save history, extractions and usage as JSON"),
    "/reset": ("", "forget the conversation and the usage"),
    "/help": ("", "this list"),
    "/exit": ("", "leave (also /quit, Ctrl-D)"),
}


def register(sub: Any) -> None:
    p = sub.add_parser("repl", help="interactive session: OCR a document, extract fields, ask questions")
    p.add_argument("image", nargs="?", type=Path, metavar="IMAGE", help="a document to open first")
    p.add_argument("-s", "--scenario", help="scenario name or YAML file for /extract (default: auto)")
    p.add_argument("-k", "--keys", type=keys_option, help=KEYS_HELP)
    add_backend_options(p)
    add_memory_options(p)
    p.set_defaults(handler=run)


def history_path() -> Path:
    data = os.environ.get("XDG_DATA_HOME")
    return (Path(data).expanduser() if data else Path.home() / ".local" / "share") / "chatocr" / "repl_history"


class Repl:
    def __init__(self, ocr: ChatOCR, console: Console, scenario: str | None = None, keys: str | None = None) -> None:
        self.ocr = ocr
        self.console = console
        self.session: ChatSession | None = None
        self.source: Path | None = None
        self.scenario: str | None = None
        self.keys: list[str] | None = None
        self.extractions: list[Extraction] = []
        self.checks: list[AnswerCheck] = []  # one per answer of the session, for /why
        self.past_calls: list[CallRecord] = []  # chat calls of sessions replaced by /model
        self.started = time.monotonic()
        self.loop = asyncio.new_event_loop()  # every OCR and model call runs here, cancellable
        self._index: tuple[ChatSession, TextIndex] | None = None
        self.corrections = Corrections()  # /fix: the open document's fixes
        self.current: Extraction | None = None  # the open document's last extraction
        self.handlers: dict[str, Callable[[str], None]] = {
            "/open": self.open,
            "/ocr": self.show_ocr,
            "/scenario": self.set_scenario,
            "/keys": self.set_keys,
            "/extract": self.extract,
            "/fix": self.fix,
            "/remember": self.remember,
            "/forget": self.forget,
            "/why": self.why,
            "/history": self.show_history,
            "/usage": self.show_usage,
            "/model": self.set_model,
            "/save": self.save,
            "/reset": self.reset,
            "/help": self.help,
        }
        if scenario:
            self.set_scenario(scenario)
        if keys:
            self.set_keys(keys)

    # -- the loop -------------------------------------------------------------------------------

    def prompt(self) -> str:
        return f"chatocr [{self.source.name}]> " if self.source else "chatocr> "

    def handle(self, line: str) -> bool:
        """Run one line; False when the user asked to leave. Errors end the turn, not the session."""
        line = line.strip()
        if not line:
            return True
        command, _, rest = line.partition(" ")
        if command in ("/exit", "/quit"):
            return False
        try:
            if command.startswith("/"):
                handler = self.handlers.get(command.lower())
                if handler is None:
                    guess = did_you_mean(command.lower(), [*COMMANDS, "/quit"])
                    raise ConfigError(f"Unknown command {command}.{guess}", hint="Type /help for the commands.")
                handler(rest.strip())
            else:
                self.ask(line)
        except (Cancelled, KeyboardInterrupt):
            self.console.print("cancelled (the session is as it was)", style="yellow", highlight=False)
        except ChatOCRError as exc:
            self.console.print(f"error: {exc}", style="red", markup=False, highlight=False)
        except Exception as exc:  # the session survives even our bugs
            self.console.print(
                f"error: {type(exc).__name__}: {exc} (a bug in chatocr; please report it)",
                style="red",
                markup=False,
                highlight=False,
            )
        return True

    # -- commands -------------------------------------------------------------------------------

    def _need_session(self) -> ChatSession:
        if self.session is None:
            raise InputError("No document is open.", hint="Open one with /open IMAGE.")
        return self.session

    def call(self, coro: Any, waiting: str = "working") -> Any:
        """Run one OCR or model call; Ctrl-C cancels it (raises Cancelled)."""
        return run_cancellable(self.loop, coro, AnswerStream(self.console, waiting))

    def close(self) -> None:
        self.loop.close()

    def open(self, arg: str) -> None:
        if not arg:
            raise ConfigError("Usage: /open IMAGE")
        path = Path(arg).expanduser()
        session = self.call(self.ocr.achat(str(path), self.scenario), "reading the document")
        self.session, self.source = session, path
        self.checks = []  # /why numbers follow /history: this document's answers
        self.corrections.clear()
        self.current = None
        doc = session.document
        cached = ", cached" if doc.cached else ""
        self.console.print(
            f"opened {path}: {len(doc.lines)} lines, {len(doc.pages)} page(s) "
            f"({doc.engine}{cached}); /ocr shows the text",
            highlight=False,
            markup=False,
        )

    def show_ocr(self, arg: str) -> None:
        session = self._need_session()  # numbered lines: /fix FIELD #N takes line N
        self.console.print(numbered_text(session.document, session.prepared.layout), markup=False, highlight=False)

    def set_scenario(self, arg: str) -> None:
        if not arg:  # show, do not change
            current = self.scenario or "auto (each document is routed)"
            self.console.print(f"scenario: {current}; /scenario NAME|auto sets it", highlight=False, markup=False)
            return
        if arg == "auto":
            self.scenario = None
            self.console.print("scenario: auto (each document is routed)")
            return
        scenario = self.ocr.library.resolve(arg)  # a YAML file, or a name (suggestions if unknown)
        self.scenario = scenario.name
        self.console.print(
            f"scenario: {scenario.name} ({scenario.title}); fields: " + ", ".join(f.name for f in scenario.fields),
            highlight=False,
            markup=False,
        )

    def set_keys(self, arg: str) -> None:
        if not arg:  # show, do not change
            current = ", ".join(self.keys) if self.keys else "the scenario's fields"
            self.console.print(f"keys: {current}; /keys k1,k2 sets them, /keys - resets", highlight=False, markup=False)
            return
        if arg == "-":
            self.keys = None
            self.console.print("keys: the scenario's fields")
            return
        names = [key.name for key in parse_keys(arg)]  # a bad type fails here, before any model call
        self.keys = split_keys(arg)  # name:type=description items: the API reads the same syntax
        self.console.print("keys: " + ", ".join(names), highlight=False, markup=False)

    def extract(self, arg: str) -> None:
        session = self._need_session()
        result = self.call(session.aextract(self.keys, self.scenario), "extracting")
        self.extractions.append(result)
        self.current = result
        fixes = self.corrections.fixes
        self.console.print(field_table(result, {name: fix.value for name, fix in fixes.items()}))  # review first
        review = review_line(result)
        if review:
            self.console.print(review, style="bold", highlight=False, markup=False)
        self.console.print(summary_line(result), style="dim", highlight=False, markup=False)
        for warning in result.warnings:
            self.console.print(f"warning: {warning}", style="yellow", highlight=False, markup=False)

    def fix(self, arg: str) -> None:
        session = self._need_session()
        name, chosen = self.corrections.fix(self.current, session.document, session.prepared.layout, arg)
        shown = "(none)" if chosen.value is None else chosen.value
        self.console.print(f"{name}: {shown} (corrected; /remember keeps it)", markup=False, highlight=False)

    def remember(self, arg: str) -> None:
        session = self._need_session()
        assert self.source is not None
        scenario, example, evicted = self.corrections.remember(
            self.ocr.pipeline.memory, self.current, session.document, self.source
        )
        self.console.print(
            f"remembered in the memory of {scenario} ({example.id[:12]}, {len(example.answer)} fields"
            f"{', ' + str(len(self.corrections.fixes)) + ' corrected' if self.corrections.fixes else ''}); "
            "similar documents get it as an example",
            markup=False,
            highlight=False,
        )
        if evicted:
            self.console.print(evicted, style="yellow", markup=False, highlight=False)

    def forget(self, arg: str) -> None:
        self._need_session()
        assert self.source is not None
        named = self.current.scenario if self.current is not None else self.scenario
        scenario = self.corrections.forget(self.ocr.pipeline.memory, named, self.source)
        self.console.print(f"forgotten: this document is no longer in the memory of {scenario}", highlight=False)

    def ask(self, question: str) -> None:
        session = self._need_session()
        stream = AnswerStream(self.console)
        try:
            answer = run_cancellable(self.loop, session.aask(question, on_delta=stream.on_delta), stream)
        except Cancelled:
            if stream.text:  # what was generated before Ctrl-C, for the record
                self.console.print(stream.text, style="dim", highlight=False, markup=False)
            raise
        if not answer.strip():
            self.console.print("(no answer)")
            return
        check = check_answer(answer, session.document, self._text_index(session))
        self.checks.append(check)
        self.console.print(answer_text(check))
        note = unsupported_note(check)
        if note is not None:
            self.console.print(note)

    def _text_index(self, session: ChatSession) -> TextIndex:
        if self._index is None or self._index[0] is not session:
            self._index = (session, TextIndex(session.document.layout()))
        return self._index[1]

    def why(self, arg: str) -> None:
        if not self.checks:
            raise InputError("No answer to explain yet.", hint="Ask a question about the document first.")
        try:
            n = int(arg) if arg else len(self.checks)
            check = self.checks[n - 1] if n >= 1 else self.checks[n]
        except (ValueError, IndexError):
            raise ConfigError(
                f"/why takes an answer's number, 1 to {len(self.checks)}.",
                hint="/history lists the answers; /why alone explains the last.",
            ) from None
        self.console.print(answer_text(check))
        if not check.claims:
            self.console.print("it states no number, date, code or name to look up", style="dim")
        for claim in check.claims:
            where = ", ".join(f"{e.line_id} {e.text!r}" for e in claim.evidence)
            if claim.supported:
                self.console.print(f"  ✓ {claim.text}: {where}", style="green", highlight=False, markup=False)
            else:
                self.console.print(f"  ? {claim.text}: {claim.problem}", style="yellow", highlight=False, markup=False)
        if check.support:
            self.console.print("lines the answer rests on:", highlight=False)
        for ev in check.support:
            box = ",".join(f"{c:.0f}" for point in ev.box[:1] + ev.box[2:3] for c in point)
            self.console.print(
                f"  {ev.line_id}  {ev.text}   (box {box}, confidence {ev.confidence:.2f})",
                highlight=False,
                markup=False,
            )

    def show_history(self, arg: str) -> None:
        session = self._need_session()
        if not session.history:
            self.console.print("no questions yet")
        for n, (question, answer) in enumerate(session.history, start=1):
            self.console.print(f"{n}. you: {question}\n   chatocr: {answer}", markup=False, highlight=False)

    def usage(self) -> dict[str, Any]:
        calls = [*self.past_calls, *(self.session.calls if self.session else [])]
        calls += [c for e in self.extractions for c in e.calls]
        return {
            **usage_of(calls),
            "llm_seconds": round(sum(c.latency_s for c in calls), 2),
            "session_seconds": round(time.monotonic() - self.started, 1),
            "model": self.ocr.model.label,
        }

    def show_usage(self, arg: str) -> None:
        u = self.usage()
        self.console.print(
            f"{u['calls']} call(s), {u['prompt_tokens']} prompt + {u['completion_tokens']} "
            f"completion tokens, {u['llm_seconds']}s in the model, {u['session_seconds']}s "
            f"session, model {u['model']}",
            highlight=False,
            markup=False,
        )

    def set_model(self, arg: str) -> None:
        if not arg:  # show, do not change
            self.console.print(
                f"model: {self.ocr.model.provider}:{self.ocr.model.model}; /model PROVIDER[:MODEL] "
                f"switches (providers: {', '.join(available_backends())})",
                highlight=False,
                markup=False,
            )
            return
        ocr = ChatOCR(llm=arg, ocr=self.ocr.engine, config=self.ocr.config, scenarios=self.ocr.library)
        old, self.ocr = self.session, ocr
        if old is not None:
            self.past_calls.extend(old.calls)
            self.session = ChatSession(ocr, old.prepared, old.scenario)
            self.session.history = list(old.history)
        self.console.print(f"model: {ocr.model.provider}:{ocr.model.model}", highlight=False, markup=False)

    def save(self, arg: str) -> None:
        if not arg:
            raise UserError(
                "/save needs a file to write: the questions and answers, the extractions and the "
                "usage go there as JSON.",
                hint="For example: /save session.json",
            )
        data = {
            "source": str(self.source) if self.source else None,
            "scenario": self.scenario,
            "keys": self.keys,
            "history": [{"question": q, "answer": a} for q, a in (self.session.history if self.session else [])],
            "answer_checks": [c.to_dict() for c in self.checks],
            "extractions": [e.to_dict() for e in self.extractions],
            "fixes": {
                name: {"value": f.value, "lines": [dict(line) for line in f.lines]}
                for name, f in self.corrections.fixes.items()
            },
            "usage": self.usage(),
        }
        path = Path(arg).expanduser()
        # Keys a service echoed into an answer must not persist (extractions are masked by to_dict).
        _write_new_version(path, redact(json.dumps(data, ensure_ascii=False, indent=2, default=str)) + "\n")
        self.console.print(f"saved {path}", highlight=False, markup=False)

    def reset(self, arg: str) -> None:
        if self.session is not None:
            s = self.session
            self.session = ChatSession(self.ocr, s.prepared, s.scenario)
        self.extractions, self.past_calls, self.started = [], [], time.monotonic()
        self.checks = []
        self.console.print("conversation and usage reset")

    def help(self, arg: str) -> None:
        table = Table("command", "argument", "", box=None, show_header=False)
        for name, (argument, text) in COMMANDS.items():
            table.add_row(name, argument, text)
        table.add_row("anything else", "", "a question about the open document")
        self.console.print(table)


def _write_new_version(path: Path, text: str) -> None:
    """Write `path` whole or not at all (chatocr.fileio's writer: a symlink, a FIFO or a device at
    `path` is refused before anything is written). Typed errors for the usual mistakes: a folder
    that does not exist, a folder given as the file, no permission."""
    folder = path.parent
    if not folder.is_dir():
        raise UserError(
            f"Cannot save to {path}: the folder {folder} does not exist.",
            hint=f"Create it first (mkdir -p {folder}) or give a path in an existing folder.",
        )
    if path.is_dir() and not path.is_symlink():
        raise UserError(
            f"Cannot save to {path}: it is a folder.", hint=f"Give a file name, e.g. /save {path}/session.json"
        )
    try:  # the one writer: a link, a pipe or a device there is refused; secrets masked
        atomic_write(path, text)
    except OSError as exc:
        raise UserError(f"Cannot save to {path}: {exc.strerror or exc}.", hint="Choose another path.") from None


class ReplCompleter(Completer):
    """Commands; scenario names after /scenario; field names after /keys; paths after /open, /save."""

    def __init__(self, repl: Repl) -> None:
        self.repl = repl
        self.paths = PathCompleter(expanduser=True)

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        if " " not in text:
            if text.startswith("/"):
                yield from (Completion(c, -len(text)) for c in [*COMMANDS, "/quit"] if c.startswith(text))
            return
        command, _, rest = text.partition(" ")
        if command in ("/open", "/save"):
            yield from self.paths.get_completions(Document(rest, len(rest)), complete_event)
            return
        choices: list[str] = []
        word = rest
        if command == "/scenario":
            choices = ["auto", *self.repl.ocr.library.names()]
        elif command == "/model":
            choices = available_backends()
        elif command == "/keys":
            word = rest.rsplit(",", 1)[-1].lstrip()
            choices = self._field_names()
        elif command == "/fix" and " " not in rest and self.repl.current is not None:
            choices = list(self.repl.current.fields)
        yield from (Completion(c, -len(word)) for c in choices if c.startswith(word))

    def _field_names(self) -> list[str]:
        library = self.repl.ocr.library
        scenarios = [library.get(self.repl.scenario)] if self.repl.scenario else list(library)
        return sorted({f.name for s in scenarios for f in s.fields})


def _lines(repl: Repl) -> Iterable[str]:
    if not sys.stdin.isatty():
        yield from sys.stdin
        return
    history = history_path()
    history.parent.mkdir(parents=True, exist_ok=True)
    prompt: PromptSession[str] = PromptSession(
        history=FileHistory(str(history)), completer=ReplCompleter(repl), complete_while_typing=False
    )
    warned = False  # Ctrl-C at an empty prompt: say how to leave; a second one in a row leaves
    # At the prompt, prompt_toolkit reads Ctrl-C as a key; during a call, run_cancellable turns the
    # signal into a cancel. In between the terminal is briefly in cooked mode, where Ctrl-C is a
    # signal: a KeyboardInterrupt raised there would leave prompt_toolkit's application half
    # started ("Application is already running" at the next prompt). So the signal is only noted
    # and handed to the prompt as its own Ctrl-C once the prompt runs: two quick presses must not
    # lose the second one.
    app = prompt.app
    pending = False

    def note_sigint(signum: int, frame: FrameType | None) -> None:
        nonlocal pending
        pending = True
        if app.is_running:  # started but not yet reading keys (e.g. raw mode not yet entered)
            repl.loop.call_soon_threadsafe(hand_to_prompt)

    def hand_to_prompt() -> None:
        nonlocal pending
        if pending and app.future is not None and not app.future.done():
            pending = False
            app.exit(exception=KeyboardInterrupt())

    previous = signal.signal(signal.SIGINT, note_sigint)
    try:
        while True:
            try:
                line = repl.loop.run_until_complete(prompt.prompt_async(repl.prompt(), pre_run=hand_to_prompt))
            except KeyboardInterrupt:
                if prompt.app.current_buffer.text.strip() or not warned:  # a typed line is just cleared
                    if not prompt.app.current_buffer.text.strip():
                        repl.console.print("(Ctrl-C again, Ctrl-D or /exit to leave)", style="dim", highlight=False)
                        warned = True
                    continue
                return
            except EOFError:
                return
            warned = False
            yield line
    finally:
        signal.signal(signal.SIGINT, previous)


def run(args: argparse.Namespace) -> int:
    console = Console()
    # Setting up the backend and the OCR engine takes seconds: a terminal sees it happening.
    with StatusLine.for_terminal() as status:
        status.say("starting: the model and the OCR engine…")
        ocr = make_chatocr(args)
    repl = Repl(ocr, console, args.scenario, args.keys)
    console.print(
        f"chatocr repl · model {repl.ocr.model.provider}:{repl.ocr.model.model} · "
        f"OCR {repl.ocr.config.ocr if args.ocr is None else args.ocr} · /help for commands",
        highlight=False,
        markup=False,
    )
    if args.image is not None:
        repl.handle(f"/open {args.image}")
    try:
        for line in _lines(repl):
            if not repl.handle(line):
                break
    finally:
        repl.close()
    console.print("bye")
    return 0
