"""Benchmark chatocr's LLM backends: wrapper overhead, and the local model's prefix cache.

    CHATOCR_MODEL_DIR=~/.cache/chatocr/models .venv/bin/python benchmarks/bench_backends.py

1. Overhead per call of chatocr's wrapper against the raw SDK call, both against the same fake
   wire-format server on 127.0.0.1 (tests/fakes/llm_server.py), for openai, erniebot and qianfan.
   Calls alternate in blocks so drift hits all variants; ratio = median wrapper time / median raw
   time, like for like: `chat_sync()` against the blocking raw call, and `await model.chat()`
   against the raw call made the way async code must make it (`await asyncio.to_thread(raw)`;
   the SDK backends run their blocking SDK in a worker thread too). Target <= 1.10x for both.
   `chat` against the blocking raw call is printed as well: the difference is the thread hop.
2. Local model (Qwen2.5-Coder-1.5B Q4_K_M, in process): seconds for a document behind a few-shot
   prefix right after a KV-cache reset ("cold"), then for a second document behind the same prefix
   ("warm", llama.cpp reuses the cached prefix). Speed-up = cold / warm (target >= 1.5x). Also
   reported: the same with one generated token, i.e. prompt evaluation alone. The load average is
   printed because llama.cpp's generation slows down sharply when other processes share the CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chatocr.llm import ChatSettings, RetryPolicy, get_chat_model  # noqa: E402
from chatocr.llm.base import ChatModel  # noqa: E402
from chatocr.messages import Message  # noqa: E402
from tests.fakes.llm_server import FakeLLMServer  # noqa: E402

SYSTEM = "Extract the requested fields as one JSON object."
QUESTION = "Receipt: GOLDEN BAKERY 2021-07-15 TOTAL 5.50\nKeys: store, date, total"
MESSAGES = [Message("system", SYSTEM), Message("user", QUESTION)]
SETTINGS = ChatSettings(temperature=0.5)


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def compare(raw: Callable[[], Any], model: ChatModel, calls: int, block: int = 25) -> dict[str, float]:
    """Median seconds per call of raw(), raw() in a worker thread, await model.chat() and
    model.chat_sync(), interleaved in blocks."""
    raw_times: list[float] = []
    thread_times: list[float] = []
    async_times: list[float] = []
    sync_times: list[float] = []
    loop = asyncio.new_event_loop()
    try:
        for _ in range(5):  # warm-up: connections, lazy imports
            raw()
            loop.run_until_complete(model.chat(MESSAGES, SETTINGS))
        for _ in range(max(1, calls // block)):
            for _ in range(block):
                start = time.perf_counter()
                raw()
                raw_times.append(time.perf_counter() - start)
            for _ in range(block):
                start = time.perf_counter()
                loop.run_until_complete(asyncio.to_thread(raw))
                thread_times.append(time.perf_counter() - start)
            for _ in range(block):
                start = time.perf_counter()
                loop.run_until_complete(model.chat(MESSAGES, SETTINGS))
                async_times.append(time.perf_counter() - start)
            for _ in range(block):
                start = time.perf_counter()
                model.chat_sync(MESSAGES, SETTINGS)
                sync_times.append(time.perf_counter() - start)
    finally:
        loop.close()
    raw_ms = _median_ms(raw_times)
    return {
        "raw_ms": raw_ms,
        "raw_thread_ms": _median_ms(thread_times),
        "chat_ms": _median_ms(async_times),
        "chat_sync_ms": _median_ms(sync_times),
        "chat_ratio": _median_ms(async_times) / raw_ms,
        "chat_sync_ratio": _median_ms(sync_times) / raw_ms,
        "chat_vs_raw_thread": _median_ms(async_times) / _median_ms(thread_times),
    }


def bench_openai(server: FakeLLMServer, calls: int) -> dict[str, float]:
    import openai

    client = openai.OpenAI(base_url=server.url + "/v1", api_key=server.bearer_key, max_retries=0)
    wire: Any = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]

    def raw() -> Any:
        response = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=wire,
            temperature=0.5,
            max_tokens=1024,
        )
        return response.choices[0].message.content

    model = get_chat_model("openai", base_url=server.url + "/v1", api_key=server.bearer_key)
    return compare(raw, model, calls)


def bench_erniebot(server: FakeLLMServer, calls: int) -> dict[str, float]:
    import erniebot

    config = {
        "api_type": "qianfan",
        "access_token": server.access_token,
        "api_base_url": server.url + "/rpc/2.0/ai_custom/v1/wenxinworkshop",
        "max_retries": 0,
    }

    def raw() -> Any:
        response = erniebot.ChatCompletion.create(
            model="ernie-3.5",
            messages=[{"role": "user", "content": QUESTION}],
            system=SYSTEM,
            temperature=0.5,
            max_output_tokens=1024,
            _config_=config,
        )
        return response.result

    model = get_chat_model("ernie:ernie-3.5", base_url=server.url, access_token=server.access_token)
    return compare(raw, model, calls)


def bench_qianfan(server: FakeLLMServer, calls: int) -> dict[str, float]:
    model = get_chat_model(
        "qianfan:ERNIE-3.5-8K", base_url=server.url, console_base_url=server.url, access_token=server.access_token
    )  # also points qianfan's process-wide config at the fake server
    import qianfan

    resource = qianfan.ChatCompletion(version="1")

    def raw() -> Any:
        response: Any = resource.do(
            messages=[{"role": "user", "content": QUESTION}],
            model="ERNIE-3.5-8K",
            system=SYSTEM,
            temperature=0.5,
            max_output_tokens=1024,
            retry_count=1,
        )
        return response.body["result"]

    return compare(raw, model, calls)


# ---- local prefix cache -------------------------------------------------------------------------

EXAMPLES = [
    (
        "SUNNY MART\n12 Harbour Road\n2019-03-02 10:41\nMILK 1L 3.50\nEGGS x12 4.20\nBREAD 2.30\n"
        "SUBTOTAL 10.00\nTAX 0.60\nTOTAL 10.60\nCASH 20.00\nCHANGE 9.40\nTHANK YOU",
        {"store": "SUNNY MART", "date": "2019-03-02", "total": "10.60"},
    ),
    (
        "CITY BOOKS SDN BHD\nNo. 5 Jalan Ampang\nDate: 2020-11-30\nNOVEL 'THE SEA' 12.00\nBOOKMARK 1.50\n"
        "TOTAL RM 13.50\nVISA ****1234\nRECEIPT NO 00231",
        {"store": "CITY BOOKS SDN BHD", "date": "2020-11-30", "total": "13.50"},
    ),
    (
        "GREEN GROCER\nLot 7, Market Square\n15/01/2021\nAPPLES 1KG 6.90\nBANANAS 2.10\nORANGES 4.00\n"
        "ROUNDING -0.01\nTOTAL 12.99\nPAID CARD",
        {"store": "GREEN GROCER", "date": "15/01/2021", "total": "12.99"},
    ),
]
DOCS = [
    "GOLDEN BAKERY\n2021-07-15\nBREAD 2.40\nCOFFEE 3.10\nTOTAL 5.50",
    "RIVERSIDE CAFE\n2022-02-01\nTEA 2.00\nCAKE 4.00\nTOTAL 6.00",
]
SCHEMA = {
    "type": "object",
    "properties": {"store": {"type": "string"}, "date": {"type": "string"}, "total": {"type": "string"}},
    "required": ["store", "date", "total"],
}


def few_shot(document: str) -> list[Message]:
    messages = [Message("system", "Extract store, date and total from the receipt text. Answer one JSON object.")]
    for text, answer in EXAMPLES:
        messages.append(Message("user", f"Receipt:\n{text}\nKeys: store, date, total"))
        messages.append(Message("assistant", json.dumps(answer)))
    messages.append(Message("user", f"Receipt:\n{document}\nKeys: store, date, total"))
    return messages


def bench_local(repeats: int) -> dict[str, Any]:
    from chatocr.llm.local import LocalChatModel

    model = get_chat_model("local")
    assert isinstance(model, LocalChatModel)
    settings = ChatSettings(json_mode=SCHEMA, max_output_tokens=40)
    model.chat_sync(few_shot(DOCS[0]), ChatSettings(max_output_tokens=1))  # load the model first
    cold: list[float] = []
    warm: list[float] = []
    cold_prefill: list[float] = []
    warm_prefill: list[float] = []
    answers: list[str] = []
    prompt_tokens = 0
    one_token = ChatSettings(max_output_tokens=1)
    for _ in range(repeats):
        # Prompt evaluation alone (one generated token): isolates what the prefix cache saves.
        model.llama().llama.reset()
        cold_prefill.append(model.chat_sync(few_shot(DOCS[0]), one_token).latency_s)
        warm_prefill.append(model.chat_sync(few_shot(DOCS[1]), one_token).latency_s)
        # End to end, as extraction runs: the JSON answer generated under the schema.
        model.llama().llama.reset()  # forget the KV cache: the next call evaluates everything
        reply = model.chat_sync(few_shot(DOCS[0]), settings)
        cold.append(reply.latency_s)
        prompt_tokens = reply.usage.prompt_tokens or 0
        reply = model.chat_sync(few_shot(DOCS[1]), settings)
        warm.append(reply.latency_s)
        answers.append(reply.text)
    return {
        "prompt_tokens": prompt_tokens,
        "cold_s": statistics.median(cold),
        "warm_s": statistics.median(warm),
        "speedup": statistics.median(cold) / statistics.median(warm),
        "cold_prefill_s": statistics.median(cold_prefill),
        "warm_prefill_s": statistics.median(warm_prefill),
        "prefill_speedup": statistics.median(cold_prefill) / statistics.median(warm_prefill),
        "warm_answer": answers[-1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="calls per variant per SDK (default 200)")
    parser.add_argument("--local-repeats", type=int, default=2)
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--skip-sdks", action="store_true", help="only the local model")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    results: dict[str, Any] = {"cpus": os.cpu_count()}
    server = FakeLLMServer()
    # No retries in the way of the measurement (nothing fails here anyway).
    ChatModel.retry_policy = RetryPolicy(max_attempts=1)
    try:
        sdks = (
            ()
            if args.skip_sdks
            else (("openai", bench_openai), ("erniebot", bench_erniebot), ("qianfan", bench_qianfan))
        )
        for name, bench in sdks:
            row = bench(server, args.calls)
            results[name] = row
            worst = max(row["chat_sync_ratio"], row["chat_vs_raw_thread"])
            verdict = "met" if worst <= 1.10 else "NOT met"
            print(
                f"{name:9s} sync: raw {row['raw_ms']:.2f} ms, chat_sync {row['chat_sync_ms']:.2f} ms = "
                f"{row['chat_sync_ratio']:.3f}x | async: raw via to_thread {row['raw_thread_ms']:.2f} ms, "
                f"chat {row['chat_ms']:.2f} ms = {row['chat_vs_raw_thread']:.3f}x | target <= 1.10x: {verdict} "
                f"| (chat vs sync raw: {row['chat_ratio']:.3f}x)",
                flush=True,
            )
    finally:
        server.close()
    if not args.skip_local:
        row = bench_local(args.local_repeats)
        results["local"] = row
        verdict = "met" if row["speedup"] >= 1.5 else "NOT met"
        print(
            f"local     {row['prompt_tokens']} prompt tokens | cold {row['cold_s']:.2f} s | "
            f"warm (shared prefix) {row['warm_s']:.2f} s | speed-up {row['speedup']:.2f}x "
            f"(target >= 1.5x: {verdict}) | answer {row['warm_answer']}"
        )
        print(
            f"local     prompt evaluation only: cold {row['cold_prefill_s']:.2f} s | warm {row['warm_prefill_s']:.2f} s"
            f" | speed-up {row['prefill_speedup']:.2f}x"
        )
    load = os.getloadavg()
    results["loadavg"] = load
    print(f"load average during the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
