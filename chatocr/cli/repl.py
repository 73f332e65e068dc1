"""`chatocr repl [IMAGE]`: open a document, read its OCR, extract fields, ask about it.

A small loop in the manner of `llm chat`: commands start with "/", anything else is a question
about the open document (a ChatSession, history kept within the model's budget). A failed command
prints its error and the loop goes on. prompt_toolkit gives line editing, a history file under the
user's data directory and completion of commands, scenario names, keys and paths; when stdin is
not a terminal, lines are read plainly (for scripts).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from chatocr.api import ChatOCR, ChatSession
from chatocr.cli.common import add_backend_options, field_table, make_chatocr, summary_line
from chatocr.errors import ChatOCRError, ConfigError, InputError
from chatocr.extraction.result import CallRecord, Extraction
from chatocr.llm.registry import available_backends

__all__ = ["COMMANDS", "Repl", "history_path", "register"]

COMMANDS: dict[str, tuple[str, str]] = {
    "/open": ("IMAGE", "open a document (OCR it)"),
    "/ocr": ("", "show the document's OCR text in reading order"),
    "/scenario": ("NAME|auto", "the scenario for /extract (auto: route each time)"),
    "/keys": ("k1,k2|-", "the keys for /extract (-: the scenario's fields)"),
    "/extract": ("", "extract the keys: value, status, confidence per field"),
    "/history": ("", "the questions and answers so far"),
    "/usage": ("", "calls, tokens and time of this session"),
    "/model": ("PROVIDER[:MODEL]", "switch the chat backend (history kept)"),
    "/save": ("FILE", "save history, extractions and usage as JSON"),
    "/reset": ("", "forget the conversation and the usage"),
    "/help": ("", "this list"),
    "/exit": ("", "leave (also /quit, Ctrl-D)"),
}


def register(sub: Any) -> None:
    p = sub.add_parser("repl", help="interactive session: OCR a document, extract fields, ask questions")
    p.add_argument("image", nargs="?", type=Path, metavar="IMAGE", help="a document to open first")
    p.add_argument("-s", "--scenario", help="scenario for /extract (default: auto)")
    p.add_argument("-k", "--keys", help="keys for /extract (default: the scenario's fields)")
    add_backend_options(p)
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
        self.past_calls: list[CallRecord] = []  # chat calls of sessions replaced by /model
        self.started = time.monotonic()
        self.handlers: dict[str, Callable[[str], None]] = {
            "/open": self.open, "/ocr": self.show_ocr, "/scenario": self.set_scenario, "/keys": self.set_keys,
            "/extract": self.extract, "/history": self.show_history, "/usage": self.show_usage,
            "/model": self.set_model, "/save": self.save, "/reset": self.reset, "/help": self.help,
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
                    raise ConfigError(f"Unknown command {command}.", hint="Type /help for the commands.")
                handler(rest.strip())
            else:
                self.ask(line)
        except ChatOCRError as exc:
            self.console.print(f"error: {exc}", style="red", markup=False, highlight=False)
        except Exception as exc:  # the session survives even our bugs
            self.console.print(f"error: {type(exc).__name__}: {exc} (a bug in chatocr; please report it)",
                               style="red", markup=False, highlight=False)
        return True

    # -- commands -------------------------------------------------------------------------------

    def _need_session(self) -> ChatSession:
        if self.session is None:
            raise InputError("No document is open.", hint="Open one with /open IMAGE.")
        return self.session

    def open(self, arg: str) -> None:
        if not arg:
            raise ConfigError("Usage: /open IMAGE")
        path = Path(arg).expanduser()
        session = self.ocr.chat(str(path), self.scenario)
        self.session, self.source = session, path
        doc = session.document
        cached = ", cached" if doc.cached else ""
        self.console.print(f"opened {path}: {len(doc.lines)} lines, {len(doc.pages)} page(s) "
                           f"({doc.engine}{cached}); /ocr shows the text", highlight=False, markup=False)

    def show_ocr(self, arg: str) -> None:
        self.console.print(self._need_session().text, markup=False, highlight=False)

    def set_scenario(self, arg: str) -> None:
        if not arg or arg == "auto":
            self.scenario = None
            self.console.print("scenario: auto (each document is routed)")
            return
        scenario = self.ocr.library.get(arg)  # unknown names fail with suggestions
        self.scenario = scenario.name
        self.console.print(f"scenario: {scenario.name} ({scenario.title}); fields: "
                           + ", ".join(f.name for f in scenario.fields), highlight=False, markup=False)

    def set_keys(self, arg: str) -> None:
        if arg in ("", "-"):
            self.keys = None
            self.console.print("keys: the scenario's fields")
            return
        self.keys = [k.strip() for k in arg.split(",") if k.strip()]
        self.console.print("keys: " + ", ".join(self.keys), highlight=False, markup=False)

    def extract(self, arg: str) -> None:
        session = self._need_session()
        result = session.extract(self.keys, self.scenario)
        self.extractions.append(result)
        self.console.print(field_table(result))
        self.console.print(summary_line(result), style="dim", highlight=False, markup=False)
        for warning in result.warnings:
            self.console.print(f"warning: {warning}", style="yellow", highlight=False, markup=False)

    def ask(self, question: str) -> None:
        answer = self._need_session().ask(question)
        self.console.print(Markdown(answer) if answer.strip() else "(no answer)")

    def show_history(self, arg: str) -> None:
        session = self._need_session()
        if not session.history:
            self.console.print("no questions yet")
        for n, (question, answer) in enumerate(session.history, start=1):
            self.console.print(f"{n}. you: {question}\n   chatocr: {answer}", markup=False, highlight=False)

    def usage(self) -> dict[str, Any]:
        calls = [*self.past_calls, *(self.session.calls if self.session else [])]
        calls += [c for e in self.extractions for c in e.calls]
        prompt = sum(c.prompt_tokens or 0 for c in calls)
        completion = sum(c.completion_tokens or 0 for c in calls)
        return {"calls": len(calls), "prompt_tokens": prompt, "completion_tokens": completion,
                "llm_seconds": round(sum(c.latency_s for c in calls), 2),
                "session_seconds": round(time.monotonic() - self.started, 1),
                "model": f"{self.ocr.model.provider}:{self.ocr.model.model}"}

    def show_usage(self, arg: str) -> None:
        u = self.usage()
        self.console.print(f"{u['calls']} call(s), {u['prompt_tokens']} prompt + {u['completion_tokens']} "
                           f"completion tokens, {u['llm_seconds']}s in the model, {u['session_seconds']}s "
                           f"session, model {u['model']}", highlight=False, markup=False)

    def set_model(self, arg: str) -> None:
        if not arg:
            raise ConfigError("Usage: /model PROVIDER[:MODEL]", hint=f"Providers: {', '.join(available_backends())}.")
        ocr = ChatOCR(llm=arg, ocr=self.ocr.engine, config=self.ocr.config, scenarios=self.ocr.library)
        old, self.ocr = self.session, ocr
        if old is not None:
            self.past_calls.extend(old.calls)
            self.session = ChatSession(ocr, old.document, old.text, old.title, old.language)
            self.session.history = list(old.history)
        self.console.print(f"model: {ocr.model.provider}:{ocr.model.model}", highlight=False, markup=False)

    def save(self, arg: str) -> None:
        if not arg:
            raise ConfigError("Usage: /save FILE")
        data = {
            "source": str(self.source) if self.source else None, "scenario": self.scenario, "keys": self.keys,
            "history": [{"question": q, "answer": a} for q, a in (self.session.history if self.session else [])],
            "extractions": [e.to_dict() for e in self.extractions], "usage": self.usage(),
        }
        path = Path(arg).expanduser()
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
        self.console.print(f"saved {path}", highlight=False, markup=False)

    def reset(self, arg: str) -> None:
        if self.session is not None:
            s = self.session
            self.session = ChatSession(self.ocr, s.document, s.text, s.title, s.language)
        self.extractions, self.past_calls, self.started = [], [], time.monotonic()
        self.console.print("conversation and usage reset")

    def help(self, arg: str) -> None:
        table = Table("command", "argument", "", box=None, show_header=False)
        for name, (argument, text) in COMMANDS.items():
            table.add_row(name, argument, text)
        table.add_row("anything else", "", "a question about the open document")
        self.console.print(table)


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
    prompt: PromptSession[str] = PromptSession(history=FileHistory(str(history)), completer=ReplCompleter(repl),
                                               complete_while_typing=False)
    while True:
        try:
            yield prompt.prompt(repl.prompt())
        except KeyboardInterrupt:  # Ctrl-C clears the line
            continue
        except EOFError:
            return


def run(args: argparse.Namespace) -> int:
    console = Console()
    repl = Repl(make_chatocr(args), console, args.scenario, args.keys)
    console.print(f"chatocr repl · model {repl.ocr.model.provider}:{repl.ocr.model.model} · "
                  f"OCR {repl.ocr.config.ocr if args.ocr is None else args.ocr} · /help for commands",
                  highlight=False, markup=False)
    if args.image is not None:
        repl.handle(f"/open {args.image}")
    for line in _lines(repl):
        if not repl.handle(line):
            break
    console.print("bye")
    return 0
