"""How the REPL shows a call in progress and a checked answer.

While a call runs: a spinner saying Ctrl-C cancels it, then the answer's words as the backend
streams them (the last screenful). Both are transient: when the call ends they are replaced by the
final answer, whose unsupported claims (extraction/answers.py) are dimmed and listed under it.
On a terminal that is not interactive (a pipe, a script) nothing is shown until the end.
"""

from __future__ import annotations

import threading
from types import TracebackType

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from chatocr.extraction.answers import AnswerCheck

__all__ = ["AnswerStream", "answer_text", "unsupported_note"]


class AnswerStream:
    """A context manager; pass `on_delta` to the backend. Thread-safe: backends may call on_delta
    from their worker thread."""

    def __init__(self, console: Console, waiting: str = "thinking") -> None:
        self.console = console
        self.waiting = waiting
        self._parts: list[str] = []
        self._lock = threading.Lock()
        self._live: Live | None = None

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._parts)

    def on_delta(self, piece: str) -> None:
        with self._lock:
            self._parts.append(piece)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        text = self.text
        if not text:
            yield Spinner("dots", text=Text(f"{self.waiting}… (Ctrl-C cancels)", style="dim"))
            return
        height = max(1, (options.max_height or console.height) - 1)
        yield Text("\n".join(text.splitlines()[-height:]))

    def __enter__(self) -> AnswerStream:
        if self.console.is_terminal:
            self._live = Live(
                self,
                console=self.console,
                transient=True,
                refresh_per_second=10,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def answer_text(check: AnswerCheck) -> Text:
    """The answer, its unsupported claims dimmed and underlined."""
    text = Text(check.answer)
    for claim in check.unsupported:
        text.stylize("dim underline", claim.start, claim.end)
    return text


def unsupported_note(check: AnswerCheck) -> Text | None:
    """One line per unsupported claim and where to look, or None when the answer is borne out."""
    claims = check.unsupported
    if not claims:
        return None
    note = Text(style="yellow")
    for claim in claims:
        note.append(f"? {claim.text}: {claim.problem}\n")
    note.append("/why shows the lines the answer rests on", style="dim")
    return note
