"""Prompt templates: Jinja2 files in prompts/<language>/, rendered in a sandbox.

Why a sandbox and strict undefined: templates are user-editable files, and a typo in a variable
name must fail loudly instead of silently sending an empty prompt. Documents and examples are
passed as *data* (template variables), never compiled as templates, so OCR text that happens to
contain `{{ 7*7 }}` or `{% ... %}` comes out verbatim.

A user directory overrides single files: `my_prompts/zh/task.j2` replaces only the Chinese task.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from chatocr.errors import TemplateError
from chatocr.resources import builtin_prompts_dir, user_dirs

__all__ = ["TEMPLATE_NAMES", "PromptSet", "load_prompts"]

PROMPT_PATH_ENV = "CHATOCR_PROMPT_PATH"

# Every template a prompt set must provide (see prompts/README.md for each one's variables).
TEMPLATE_NAMES = (
    "system",
    "example",
    "answer",
    "examples_turn",
    "examples_inline",
    "document_part",
    "ack",
    "reminder",
    "task",
    "classifier",
    "repair",
    "choose",
    "second_look",
    "chat_system",
    "chat_document",
    "chat_ready",
)
LANGUAGES = ("zh", "en")


class PromptSet:
    """The templates of one language. `render(name, **variables)` returns stripped text."""

    def __init__(self, language: str, directories: Iterable[Path]) -> None:
        if language not in LANGUAGES:
            raise TemplateError(
                f"No prompt set for language {language!r}.", hint=f"Use one of: {', '.join(LANGUAGES)}."
            )
        self.language = language
        self.directories = tuple(directories)
        self._env = ImmutableSandboxedEnvironment(
            loader=jinja2.FileSystemLoader([str(d) for d in self.directories]),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,
        )
        self._templates: dict[str, jinja2.Template] = {}
        for name in TEMPLATE_NAMES:
            self._templates[name] = self._load(name)

    def _load(self, name: str) -> jinja2.Template:
        filename = f"{self.language}/{name}.j2"
        try:
            return self._env.get_template(filename)
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(
                f"Prompt template {filename} is missing (searched {', '.join(map(str, self.directories))}).",
                hint="Restore it or provide it in a directory named by CHATOCR_PROMPT_PATH.",
            ) from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"{exc.filename or filename}:{exc.lineno}: template syntax error: {exc.message}"
            ) from exc

    def render(self, name: str, **variables: Any) -> str:
        template = self._templates.get(name)
        if template is None:
            raise TemplateError(f"Unknown prompt template {name!r}.", hint=f"Known: {', '.join(TEMPLATE_NAMES)}.")
        try:
            return template.render(**variables).strip()
        except jinja2.UndefinedError as exc:
            raise TemplateError(
                f"{self.language}/{name}.j2: {exc.message}",
                hint=f"The template uses a variable that is not provided; it receives: {', '.join(sorted(variables))}.",
            ) from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{self.language}/{name}.j2: {exc}") from exc
        except (TypeError, ValueError, AttributeError) as exc:  # e.g. a filter applied to the wrong type
            raise TemplateError(f"{self.language}/{name}.j2: {type(exc).__name__}: {exc}") from exc


@cache
def _cached_prompts(language: str, directories: tuple[Path, ...]) -> PromptSet:
    return PromptSet(language, directories)


def load_prompts(language: str, extra_dirs: Iterable[str | Path] = ()) -> PromptSet:
    """The prompt set for `language`: user directories (given, then $CHATOCR_PROMPT_PATH) override
    the built-in templates file by file. Cached per language and directory list."""
    directories = [Path(d).expanduser() for d in extra_dirs]
    directories += user_dirs(PROMPT_PATH_ENV)
    directories.append(builtin_prompts_dir())
    return _cached_prompts(language, tuple(directories))
