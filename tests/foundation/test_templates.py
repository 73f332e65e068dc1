"""Prompt templates: sandboxed, strict, data never compiled, user overrides file by file."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatocr.conversation import TEMPLATE_NAMES, PromptSet, load_prompts
from chatocr.errors import TemplateError
from chatocr.resources import builtin_prompts_dir

INJECTION = "总计 {{ 7*7 }} {% for x in range(3) %}x{% endfor %} {# comment #} {{ ''.__class__ }}"


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_template_exists_and_renders(language: str) -> None:
    prompts = load_prompts(language)
    text = prompts.render(
        "task", title="T", keys=["a"], keys_json='["a"]', text="doc", part=1, parts=1, examples="", has_examples=False
    )
    assert '["a"]' in text and "doc" in text
    for name in TEMPLATE_NAMES:
        assert (builtin_prompts_dir() / language / f"{name}.j2").is_file()


@pytest.mark.parametrize("language", ["zh", "en"])
def test_document_text_is_data_not_template(language: str) -> None:
    prompts = load_prompts(language)
    out = prompts.render(
        "task",
        title="T",
        keys=["a"],
        keys_json='["a"]',
        text=INJECTION,
        part=1,
        parts=1,
        examples="",
        has_examples=True,
    )
    assert INJECTION in out
    assert "49" not in out
    example = prompts.render("example", number=1, text=INJECTION)
    assert INJECTION in example
    classifier = prompts.render("classifier", scenarios=[], text=INJECTION)
    assert INJECTION in classifier


def test_strict_undefined_names_the_template(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "reminder.j2").write_text("Remember {{ keyz }}", encoding="utf-8")
    prompts = PromptSet("en", [tmp_path, builtin_prompts_dir()])
    with pytest.raises(TemplateError, match=r"en/reminder.j2: 'keyz' is undefined") as info:
        prompts.render("reminder", title="T", keys=["a"])
    assert "it receives: keys, title" in str(info.value)


def test_sandbox_refuses_unsafe_attribute_access(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "ack.j2").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}", encoding="utf-8")
    prompts = PromptSet("en", [tmp_path, builtin_prompts_dir()])
    with pytest.raises(TemplateError, match=r"en/ack\.j2"):
        prompts.render("ack", part=0, parts=0)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "zh").mkdir()
    (tmp_path / "zh" / "task.j2").write_text("line one\n{% if %}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"task\.j2:2: template syntax error"):
        PromptSet("zh", [tmp_path, builtin_prompts_dir()])


def test_user_directory_overrides_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "reminder.j2").write_text("REMIND {{ keys | join('+') }} of {{ title }}", encoding="utf-8")
    monkeypatch.setenv("CHATOCR_PROMPT_PATH", str(tmp_path))
    prompts = load_prompts("en")
    assert prompts.render("reminder", title="bill", keys=["a", "b"]) == "REMIND a+b of bill"
    assert "Understood" in prompts.render("ack", part=0, parts=0)  # the rest are still built in


def test_unknown_language_is_a_clear_error() -> None:
    with pytest.raises(TemplateError, match="No prompt set for language 'fr'"):
        load_prompts("fr")


def test_missing_template_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    with pytest.raises(TemplateError, match=r"en/system\.j2 is missing"):
        PromptSet("en", [tmp_path])
