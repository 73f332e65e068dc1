"""The `chatocr` command: one sub-command module per job, dispatched from here."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from chatocr.errors import ChatOCRError, UnknownOptionError, UsageError

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]
_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)'")
_UNRECOGNIZED = re.compile(r"unrecognized arguments: (.*)")


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors suggest the closest sub-command or option
    (`chatocr extrct` -> "Did you mean 'extract'?"). Sub-parsers are of this class too."""

    argv: tuple[str, ...] = ()  # set by main(): error() looks for the sub-command in it

    def error(self, message: str) -> NoReturn:
        from chatocr.cli.suggest import did_you_mean

        choice = _INVALID_CHOICE.search(message)
        unknown = _UNRECOGNIZED.search(message)
        if choice:
            names = [name for action in self._actions if action.choices for name in action.choices]
            message += did_you_mean(choice.group(1), names)
        elif unknown and unknown.group(1).startswith("-"):
            # The root parser reports options it does not know: look in the sub-command given. Said
            # as a misspelled option is said anywhere else (a Python keyword, a config key).
            options = [option for action in self._command_parser()._actions for option in action.option_strings]
            word = unknown.group(1).split()[0].split("=", 1)[0]
            message = UnknownOptionError.of(word, [o for o in options if o.startswith("--")]).message
        super().error(message)

    def _command_parser(self) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self
        for word in self.argv:
            commands = [a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            if commands and isinstance(commands[0], dict) and word in commands[0]:
                parser = commands[0][word]
        return parser


# Each sub-command's module, by the command's name. Only the command being run is imported (with
# its dependencies): importing all of them cost ~0.4 s before anything could show on a terminal.
_COMMANDS = {
    "plan": "plan_cmd",
    "scenarios": "scenarios_cmd",
    "extract": "extract_cmd",
    "eval": "eval_cmd",
    "calibrate": "calibrate_cmd",
    "ocr": "ocr_cmd",
    "doctor": "doctor_cmd",
    "repl": "repl",
    "view": "view_cmd",
    "export": "export_cmd",
    "serve": "serve_cmd",
    "warm": "warm_cmd",
    "review": "review_cmd",
    "memory": "memory_cmd",
}


def _command_in(argv: Sequence[str]) -> str | None:
    """The sub-command named in argv: its first word that is not an option (the root parser's
    options take no values), if that word is a command's name; "" (none needed) for `--version`
    before any command."""
    if argv and argv[0] in ("-V", "--version"):
        return ""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in _COMMANDS else None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (`command` given) one with only that sub-command registered (none for
    ""): enough to parse and to report that command's errors; `chatocr --help` and a mistyped
    command get all."""
    from chatocr import __version__

    parser = ArgumentParser(
        prog="chatocr",
        description="ChatOCR: OCR + an LLM with token-budgeted few-shot dialogue, returning grounded JSON.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"chatocr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(f"chatocr.cli.{module}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = tuple(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_in(words))
    if isinstance(parser, ArgumentParser):
        parser.argv = words
    args = parser.parse_args(words)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except ChatOCRError as exc:
        # Our errors are written for people: print them plainly, no traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1  # 2 for usage errors, as argparse's own
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `chatocr ... | head`: the reader left; no traceback, as other tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exit's flush cannot fail
        return 141


if __name__ == "__main__":
    sys.exit(main())
