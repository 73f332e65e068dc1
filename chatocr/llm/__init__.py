"""Chat backends behind one small interface.

    from chatocr.llm import get_chat_model, ChatSettings
    model = get_chat_model("local")                  # or "ernie:ernie-3.5", "qianfan:ERNIE-3.5-8K",
    reply = model.chat_sync(messages, ChatSettings(json_mode="object"))  # "dashscope:qwen-plus", ...
    reply = await model.chat(messages, on_delta=print)   # streamed where the backend can

What a backend can do is declared on its class (`backend_class("ollama").needs_server`,
`.supports_images`, `.key_env`, ...). Backend modules import their SDKs lazily; importing this
package imports none of them.
See docs/llm.md.
"""

from chatocr.llm.base import (
    BlockingChatModel,
    ChatModel,
    ChatReply,
    ChatSettings,
    DeltaCallback,
    JsonMode,
    RetryPolicy,
    SetupStatus,
    Usage,
)
from chatocr.llm.ernie_rules import ERNIE_ROLES, ernie_limits, to_ernie_payload
from chatocr.llm.presets import PRESETS, Preset
from chatocr.llm.registry import (
    ENTRY_POINT_GROUP,
    available_backends,
    backend_class,
    get_chat_model,
    register_backend,
)
from chatocr.llm.scripted import ScriptedCall, ScriptedChatModel
from chatocr.secrets import Secret, redact

__all__ = [
    "ENTRY_POINT_GROUP",
    "ERNIE_ROLES",
    "PRESETS",
    "BlockingChatModel",
    "ChatModel",
    "ChatReply",
    "ChatSettings",
    "DeltaCallback",
    "JsonMode",
    "Preset",
    "RetryPolicy",
    "ScriptedCall",
    "ScriptedChatModel",
    "Secret",
    "SetupStatus",
    "Usage",
    "available_backends",
    "backend_class",
    "ernie_limits",
    "get_chat_model",
    "redact",
    "register_backend",
    "to_ernie_payload",
]
