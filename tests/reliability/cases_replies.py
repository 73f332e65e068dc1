"""Corpus cases: what an LLM answers (the shipped scripted backend), and service faults against the
fake wire-format server of tests/fakes (the real openai SDK speaking HTTP on 127.0.0.1)."""

from __future__ import annotations

import atexit
import json
from typing import Any

from chatocr.api import ChatOCR
from chatocr.errors import (
    AuthenticationError,
    ChatOCRError,
    ContextTooLongError,
    LLMTimeoutError,
    MalformedResponseError,
    PlanningError,
    ServiceUnavailableError,
)
from chatocr.extraction.parsing import MAX_DEPTH, MAX_REPLY_CHARS
from chatocr.extraction.result import Extraction
from chatocr.llm import RetryPolicy, get_chat_model
from chatocr.llm.base import ChatModel
from chatocr.llm.scripted import ScriptedChatModel
from tests.fakes.llm_server import Drop, FakeLLMServer, Raw, Reply, Slow, Status
from tests.reliability.harness import BUG_HINT, GOOD, RECEIPT_TEXT, Ctx, case, raises

KEYS = ["company", "total"]


def extract(ctx: Ctx, model: ChatModel, **overrides: Any) -> Extraction:
    doc = ctx.file("receipt.txt", RECEIPT_TEXT)
    result = ChatOCR(llm=model, ocr="text", ocr_cache=False, **overrides).extract(
        str(doc), keys=KEYS, scenario="retail_receipt"
    )
    assert BUG_HINT not in json.dumps(result.error or {}), result.error
    return result


def answer(total: Any) -> str:
    return json.dumps({"company": "SHOP ABC SDN BHD", "total": total})


def reasked(ctx: Ctx, bad: str) -> Extraction:
    """`bad` first, the right answer second: the loop must re-ask and end grounded."""
    model = ScriptedChatModel([bad, GOOD])
    result = extract(ctx, model)
    assert result.ok, result.error
    assert len(model.calls) == 2, f"no re-ask after {bad[:80]!r}"
    assert result.fields["total"].status == "grounded" and result.values["total"] == "9.00"
    return result


def never_trusted(ctx: Ctx, bad: str) -> Extraction:
    """Only `bad` answers: the document still gets a result, and `total` is not trusted."""
    result = extract(ctx, ScriptedChatModel([bad] * 3))
    assert result.ok, result.error
    assert result.fields["total"].status in ("invalid", "missing"), result.fields["total"]
    return result


def _add_shape(name: str, value: Any, expect: str) -> None:
    def run(ctx: Ctx) -> None:
        reasked(ctx, answer(value))
        never_trusted(ctx, answer(value))

    run.__name__ = name
    case("reply", expect)(run)


# Every JSON shape an amount (scalar) field can receive that is not one value.
for _name, _value in {
    "object_with_currency": {"value": "9.00", "currency": "RM"},
    "list_of_one": ["9.00"],
    "list_of_two": ["9.00", "8.00"],
    "nested_list": [["9.00"]],
    "object_of_object": {"amount": {"value": "9.00"}},
    "boolean": True,
    "word": "nine",
}.items():
    _add_shape(f"total_{_name}", _value, f"a scalar field given {json.dumps(_value)}: a re-ask, never 'grounded'")


@case("reply", "an empty list or object for a scalar field counts as missing and is asked again")
def total_empty_containers(ctx: Ctx) -> None:
    reasked(ctx, answer([]))
    reasked(ctx, answer({}))


@case("reply", "null for a field is missing and is asked again")
def total_null(ctx: Ctx) -> None:
    reasked(ctx, answer(None))


@case("reply", "NaN for an amount: invalid and re-asked (json accepts NaN; chatocr must not)")
def total_nan(ctx: Ctx) -> None:
    reasked(ctx, answer(0).replace("0}", "NaN}"))
    never_trusted(ctx, answer(0).replace("0}", "NaN}"))


@case("reply", "Infinity and 1e400 for an amount: invalid, never 'inf'")
def total_infinite(ctx: Ctx) -> None:
    never_trusted(ctx, answer(0).replace("0}", "Infinity}"))
    never_trusted(ctx, answer(0).replace("0}", "1e400}"))


@case("reply", "a number (9 or 9.0) for an amount is fine: grounded on the first answer")
def total_number(ctx: Ctx) -> None:
    for value in (9, 9.0):
        model = ScriptedChatModel([answer(value)])
        result = extract(ctx, model)
        assert result.fields["total"].status == "grounded" and len(model.calls) == 1


@case("reply", "an integer over Python's 4,300-digit limit: a re-ask, not ValueError")
def total_huge_integer(ctx: Ctx) -> None:
    reasked(ctx, answer(0).replace("0}", "1" + "0" * 5000 + "}"))


@case("reply", "'{\"a\":' * 20000: no RecursionError, the document gets a result without a bug hint")
def deep_unclosed_objects(ctx: Ctx) -> None:
    result = extract(ctx, ScriptedChatModel(['{"a":' * 20000, GOOD]))
    assert result.ok


@case("reply", "'{\"a\":' * 2000 (within the token budget): a re-ask, then grounded")
def deep_unclosed_small(ctx: Ctx) -> None:
    reasked(ctx, '{"a":' * 2000)


@case("reply", "a value nested 5,000 arrays deep: a re-ask, not 'maximum recursion depth'")
def value_5000_deep(ctx: Ctx) -> None:
    reasked(ctx, '{"company": "SHOP ABC SDN BHD", "total": ' + "[" * 5000 + "]" * 5000 + "}")


@case("reply", f"a value nested {MAX_DEPTH + 4} deep (parseable JSON): a re-ask quoting the depth limit")
def value_over_depth(ctx: Ctx) -> None:
    result = reasked(ctx, answer(json.loads("[" * (MAX_DEPTH + 4) + "]" * (MAX_DEPTH + 4))))
    assert any("nests deeper" in m["content"] for c in result.calls for m in c.messages)


@case("reply", f"a reply over {MAX_REPLY_CHARS} characters: a re-ask, the document is not lost")
def huge_reply(ctx: Ctx) -> None:
    result = extract(ctx, ScriptedChatModel(["x" * (MAX_REPLY_CHARS + 1), GOOD]), max_tokens=10_000_000)
    assert result.ok and result.values.get("total") == "9.00"


@case("reply", "JSON in a ```json fence: read on the first answer")
def fenced(ctx: Ctx) -> None:
    model = ScriptedChatModel([f"Here you go:\n```json\n{GOOD}\n```"])
    assert extract(ctx, model).fields["total"].status == "grounded" and len(model.calls) == 1


@case("reply", "JSON inside prose: read on the first answer")
def prose_around(ctx: Ctx) -> None:
    model = ScriptedChatModel([f"Sure! The fields are {GOOD}. Anything else?"])
    assert extract(ctx, model).values["total"] == "9.00" and len(model.calls) == 1


@case("reply", "prose without JSON: a re-ask")
def prose_only(ctx: Ctx) -> None:
    reasked(ctx, "The total on this receipt is nine ringgit.")


@case("reply", "an empty answer: a re-ask")
def empty_answer(ctx: Ctx) -> None:
    reasked(ctx, "")


@case("reply", "only <think> reasoning, never closed: a re-ask")
def think_only(ctx: Ctx) -> None:
    reasked(ctx, "<think>The receipt says TOTAL 9.00 so I will answer")


@case("reply", "Python literals and trailing commas are repaired on the first answer")
def python_literals(ctx: Ctx) -> None:
    model = ScriptedChatModel(["{'company': 'SHOP ABC SDN BHD', 'total': '9.00',}"])
    assert extract(ctx, model).values["total"] == "9.00" and len(model.calls) == 1


@case("reply", "a top-level JSON array around the object: the object is read")
def array_around(ctx: Ctx) -> None:
    assert extract(ctx, ScriptedChatModel([f"[{GOOD}]"])).values["total"] == "9.00"


@case("reply", "a value that is not in the document comes back 'ungrounded', never 'grounded'")
def value_not_in_document(ctx: Ctx) -> None:
    result = extract(ctx, ScriptedChatModel([answer("123.45")] * 3))
    assert result.fields["total"].status == "ungrounded"


@case("reply", "extra keys the task did not ask for (an injected 'password') never reach the result")
def extra_keys(ctx: Ctx) -> None:
    result = extract(
        ctx,
        ScriptedChatModel([json.dumps({"company": "SHOP ABC SDN BHD", "total": "9.00", "password": "hunter2"})] * 3),
    )
    assert "password" not in result.values and "password" not in result.fields


@case("reply", "a model that fails every step still gives the document a result (not an exception)")
def always_broken(ctx: Ctx) -> None:
    result = extract(ctx, ScriptedChatModel(["{{{{ not json"] * 5))
    assert result.ok and result.fields["total"].status == "missing"


# ---- service faults (the real openai SDK against tests/fakes/llm_server.py) ------------------

_SERVER: list[FakeLLMServer] = []


def server() -> FakeLLMServer:
    if not _SERVER:
        _SERVER.append(FakeLLMServer())
        atexit.register(_SERVER[0].close)
    _SERVER[0].reset()
    return _SERVER[0]


def openai(srv: FakeLLMServer, attempts: int = 2) -> ChatModel:
    policy = RetryPolicy(max_attempts=attempts, initial_delay=0.01, max_delay=0.05)
    return get_chat_model("openai:gpt-4o-mini", base_url=srv.url + "/v1", api_key=srv.bearer_key, retry_policy=policy)


def failed_with(ctx: Ctx, behaviour: Any, kind: type[ChatOCRError], **overrides: Any) -> None:
    """One document through the API: the service fault is raised as `kind` (typed, with a hint,
    the key in no message); in a batch the same fault is that document's result (one_bad_document)."""
    srv = server()
    srv.enqueue(behaviour, behaviour)
    error = raises(kind, lambda: extract(ctx, openai(srv), **overrides))
    assert srv.bearer_key not in str(error)


@case("service", "429 with Retry-After, then an answer: waited, retried, grounded")
def rate_limited(ctx: Ctx) -> None:
    srv = server()
    srv.enqueue(
        Status(429, {"error": {"message": "slow down", "type": "rate_limit"}}, {"Retry-After": "0.05"}), Reply(GOOD)
    )
    result = extract(ctx, openai(srv))
    assert result.ok and result.values["total"] == "9.00" and len(srv.chat_requests()) == 2


@case("service", "a 500, then an answer: retried, grounded")
def server_error_then_ok(ctx: Ctx) -> None:
    srv = server()
    srv.enqueue(Status(500), Reply(GOOD))
    assert extract(ctx, openai(srv)).values["total"] == "9.00"


@case("service", "401: the document fails with AuthenticationError (typed, with a hint, key not shown)")
def unauthorized(ctx: Ctx) -> None:
    failed_with(
        ctx,
        Status(401, {"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}),
        AuthenticationError,
    )


@case("service", "no answer in time: LLMTimeoutError")
def timeout(ctx: Ctx) -> None:
    failed_with(ctx, Slow(2.0), LLMTimeoutError, timeout=0.3)


@case("service", "a body that is not a chat completion: MalformedResponseError")
def malformed(ctx: Ctx) -> None:
    failed_with(ctx, Raw(b"<html>gateway</html>", content_type="text/html"), MalformedResponseError)


@case("service", "a dropped connection: ServiceUnavailableError")
def dropped(ctx: Ctx) -> None:
    failed_with(ctx, Drop(), ServiceUnavailableError)


@case("service", "a refused port: ServiceUnavailableError; the key is in no message")
def refused_port(ctx: Ctx) -> None:
    model = get_chat_model(
        "openai",
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-corpus-refused-777",
        retry_policy=RetryPolicy(max_attempts=1),
    )
    error = raises(ServiceUnavailableError, lambda: extract(ctx, model))
    assert "sk-corpus-refused-777" not in str(error)


@case("service", "'context too long' from the service: re-planned with less, or a typed error; never a bug")
def context_too_long(ctx: Ctx) -> None:
    srv = server()
    too_long = Status(
        400,
        {
            "error": {
                "message": "This model's maximum context length is 4096 tokens",
                "type": "invalid_request_error",
                "code": "context_length_exceeded",
            }
        },
    )
    srv.enqueue(too_long, Reply(GOOD))
    try:
        result = extract(ctx, openai(srv, attempts=1))
    except (ContextTooLongError, PlanningError) as error:
        assert error.hint
        return
    assert (result.ok and result.values.get("total") == "9.00" and result.replans) or (
        result.error is not None and result.error["type"] in ("ContextTooLongError", "PlanningError")
    ), (result.error, result.replans)


@case("service", "one document's 401 never loses the other documents' results (extract_many)")
def one_bad_document(ctx: Ctx) -> None:
    srv = server()
    srv.enqueue(
        Status(401, {"error": {"message": "bad key", "type": "invalid_request_error"}}), Reply(GOOD), Reply(GOOD)
    )
    docs = [str(p) for p in ctx.receipts("in", 3)]
    chat = ChatOCR(llm=openai(srv, attempts=1), ocr="text", ocr_cache=False)
    results = list(chat.extract_many(docs, KEYS, "retail_receipt", concurrency=1))
    assert sorted(r.source for r in results) == sorted(docs)
    assert sum(r.ok for r in results) == 2 and sum(not r.ok for r in results) == 1


@case("service", "a service echoing the API key: the key is masked in the result's JSON")
def echoed_key(ctx: Ctx) -> None:
    srv = server()
    srv.enqueue(Reply(json.dumps({"company": f"SHOP ABC SDN BHD {srv.bearer_key}", "total": "9.00"})))
    result = extract(ctx, openai(srv))
    persisted = result.to_json()
    assert srv.bearer_key not in persisted and "SHOP ABC SDN BHD ***" in persisted
