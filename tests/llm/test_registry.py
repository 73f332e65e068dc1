"""Choosing backends by name, registering new ones, discovering plugins, the public surface."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import chatocr.llm
from chatocr.errors import ConfigError
from chatocr.llm import ChatModel, ScriptedChatModel, available_backends, get_chat_model, register_backend
from chatocr.llm import registry as registry_module
from chatocr.messages import Message

BUILTINS = {
    "openai",
    "qianfan-openai",
    "aistudio",
    "dashscope",
    "deepseek",
    "moonshot",
    "ollama",
    "vllm",
    "llamacpp",
    "ernie",
    "qianfan",
    "local",
    "scripted",
}


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry_module, "_factories", dict(registry_module._factories))
    monkeypatch.setattr(registry_module, "_discovered", False)
    yield


def test_builtins_are_registered() -> None:
    assert set(available_backends()) >= BUILTINS


def test_instance_passes_through() -> None:
    model = ScriptedChatModel(["x"])
    assert get_chat_model(model) is model
    with pytest.raises(ConfigError):
        get_chat_model(model, temperature=1)


def test_scripted_by_name() -> None:
    model = get_chat_model("scripted:demo", script=['{"a": 1}'])
    assert model.model == "demo"
    assert model.chat_sync([Message("user", "q")]).text == '{"a": 1}'


def test_only_the_first_colon_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    model = get_chat_model("ollama:qwen2.5:1.5b")
    assert model.provider == "ollama" and model.model == "qwen2.5:1.5b"


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        get_chat_model("nosuch:model")
    assert "nosuch" in str(info.value)
    for name in ("openai", "ernie", "qianfan", "local"):
        assert name in str(info.value)
    with pytest.raises(ConfigError):
        get_chat_model("")


def test_register_backend(clean_registry: None) -> None:
    def factory(model: str | None = None, **options: Any) -> ChatModel:
        return ScriptedChatModel(["mine"], model=model or "default")

    register_backend("mine", factory)
    assert get_chat_model("mine:m1").model == "m1"
    with pytest.raises(ConfigError, match="already registered"):
        register_backend("mine", lambda model=None, **o: ScriptedChatModel())
    register_backend("mine", lambda model=None, **o: ScriptedChatModel(model="other"), replace=True)
    assert get_chat_model("mine").model == "other"
    with pytest.raises(ConfigError):
        register_backend("bad:name", factory)


def _write_plugin(root: Path, name: str, entry: str, module_source: str) -> None:
    """A real installed-distribution layout: a module and a *.dist-info with entry_points.txt."""
    (root / "chatocr_testplugin.py").write_text(module_source)
    info = root / "chatocr_testplugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: chatocr-testplugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[chatocr.llm]\n{name} = {entry}\n")


PLUGIN = """
from chatocr.llm import ScriptedChatModel

def make(model=None, **options):
    return ScriptedChatModel(["from the plugin"], model=model or "plugin-default")

def broken_import():
    raise RuntimeError("never called")
"""


def test_plugins_are_discovered_through_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_registry: None
) -> None:
    _write_plugin(tmp_path, "myplugin", "chatocr_testplugin:make", PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "myplugin" in available_backends()
    model = get_chat_model("myplugin:x")
    assert model.model == "x"
    assert model.chat_sync([Message("user", "q")]).text == "from the plugin"
    sys.modules.pop("chatocr_testplugin", None)


def test_a_broken_plugin_does_not_break_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_registry: None, caplog: pytest.LogCaptureFixture
) -> None:
    _write_plugin(tmp_path, "brokenplugin", "chatocr_testplugin_missing:make", PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    names = available_backends()
    assert "brokenplugin" not in names and "openai" in names
    assert "brokenplugin" in caplog.text


def test_a_plugin_cannot_shadow_a_builtin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_registry: None
) -> None:
    _write_plugin(tmp_path, "ernie", "chatocr_testplugin:make", PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    available_backends()
    assert registry_module._factories["ernie"].__qualname__.startswith("ErnieBotChatModel")
    sys.modules.pop("chatocr_testplugin", None)


def test_public_names_are_exported() -> None:
    import types

    public = {
        name
        for name, value in vars(chatocr.llm).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(chatocr.llm.__all__)


def test_importing_the_package_imports_no_sdk() -> None:
    import subprocess

    code = (
        "import sys, chatocr.llm; chatocr.llm.get_chat_model('scripted', script=['x']);"
        "bad = [m for m in ('openai', 'erniebot', 'qianfan', 'llama_cpp') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_options_are_config_errors_naming_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        get_chat_model("scripted", temprature=0)
    assert "'temprature'" in str(info.value)
    assert "latency" in (info.value.hint or "") and "retry_policy" in (info.value.hint or "")
    with pytest.raises(ConfigError, match="did you mean 'base_url'"):
        get_chat_model("ollama", base_ur="http://127.0.0.1:1/v1")


def test_llm_options_typo_through_chatocr_is_a_config_error() -> None:
    from chatocr import ChatOCR

    with pytest.raises(ConfigError, match="temprature"):
        ChatOCR(config={"llm": "scripted", "ocr": "text", "llm_options": {"temprature": 0}})


CAPABILITIES = (
    "supports_images",
    "supports_json_schema",
    "supports_json_mode",
    "supports_system_role",
    "supports_streaming",
    "supports_prefix_cache",
    "needs_key",
    "needs_server",
)


def test_every_builtin_backend_declares_its_capabilities() -> None:
    from chatocr.llm.base import ChatModel
    from chatocr.llm.registry import backend_class

    classes = {name: backend_class(name) for name in available_backends()}
    for name, cls in classes.items():
        assert cls is not None and issubclass(cls, ChatModel), name
        assert all(isinstance(getattr(cls, flag), bool) for flag in CAPABILITIES), name
        assert isinstance(cls.key_env, tuple) and all(isinstance(v, str) for v in cls.key_env)
        assert not cls.needs_key or cls.key_env, f"{name} needs a key but names no variable"
    assert {n for n, c in classes.items() if c.needs_server} == {"ollama", "vllm", "llamacpp"}  # type: ignore[union-attr]
    assert {n for n, c in classes.items() if c.supports_prefix_cache} == {"local"}  # type: ignore[union-attr]
    assert classes["llamacpp"].supports_json_schema and not classes["dashscope"].supports_json_schema  # type: ignore[union-attr]
    assert not classes["deepseek"].supports_images and classes["dashscope"].supports_images  # type: ignore[union-attr]
    assert not classes["ernie"].supports_images and not classes["local"].supports_images  # type: ignore[union-attr]
    assert classes["deepseek"].key_env == ("DEEPSEEK_API_KEY",)  # type: ignore[union-attr]
    # the instance made by the registry is of that class, so callers can read it from a model too
    model = get_chat_model("ollama")
    assert type(model) is classes["ollama"] and model.needs_server and model.provider == "ollama"


def test_credentials_found_needs_a_complete_set() -> None:
    from chatocr.llm.registry import backend_class

    ernie = backend_class("ernie")
    assert ernie is not None
    assert not ernie.credentials_found({"EB_AK": "a"})
    assert ernie.credentials_found({"EB_AK": "a", "EB_SK": "b"})
    assert ernie.credentials_found({"EB_ACCESS_TOKEN": "t"})
    assert backend_class("ollama").credentials_found({})  # type: ignore[union-attr]
