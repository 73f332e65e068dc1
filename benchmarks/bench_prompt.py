"""What each part of a document's prompt costs on the local model (issue 35, a lighter prompt).

The conversation the pipeline sends for each of the shared sets' documents (SROIE receipts asked
company/date/address/total, Chinese train tickets asked their 9 fields; RapidOCR through the OCR
cache), cut into its parts and counted with the shipped model's own tokenizer:

- the kept prefix, the same for every document asked the same keys (restored from memory or disk,
  never evaluated again in a warm process): the system prompt, the examples' focused text, their
  answers, the task's opening up to the document;
- each document's own tokens, evaluated for every document: the reading-order text (and within it:
  the layout's gaps, runs of 2+ spaces that place a cell on its row; line breaks; digits, one token
  each in Qwen's vocabulary; rows holding two or more amounts, i.e. item lists and tax tables;
  lines repeated verbatim; runs of a separator character), and what follows it (the closing
  fence and the chat template's end of turn).

Counts are exact tokens; "saved" is what a variant of the text would take away (collapsing every
gap to one space, to a tab; cutting separator runs to three characters; dropping repeated lines).

With `--time N` it also measures seconds on the real model (run it alone: `flock` it beside other
users of the model): for the first N receipts, after one warm-up each, the document's own prompt
evaluated after the kept prefix in each variant, interleaved document by document:

- `as sent`: the conversation as the pipeline sends it;
- `closing restated`: with the sentence that used to close the task after the document (the keys
  named again; moved before the document in issue 35);
- `gaps as tabs` / `gaps as one space`: the document's gaps written as a tab / one space;
- `no examples`: without the example turns, the same document after a prefix ~600 tokens shorter
  (what the examples cost each document: attention over their cells, not evaluation).

    python benchmarks/bench_prompt.py                 # tokens only: seconds, no model call
    flock /tmp/chatocr-llm.lock python benchmarks/bench_prompt.py --time 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
SETS = ("sroie_train", "cn_train_ticket")
GAP = re.compile(r" {2,}")
SEPARATOR = re.compile(r"([-=_*.~#])\1{3,}")
AMOUNT = re.compile(r"\d[\d,]*[.,]\d{2}\b")
# The sentence that closed the task after the document before issue 35 (prompts/en/task.j2).
OLD_CLOSING = "\nAnswer with one JSON object with the keys {keys}; use null for a field the document does not contain."


@dataclass
class Conversation:
    """One document's planned conversation, as the pipeline would send it."""

    dataset: str
    document: str
    keys: list[str]
    messages: list[Any]  # chatocr.messages.Message
    text: str  # the document's reading-order text

    @property
    def final(self) -> Any:
        return self.messages[-1]


@dataclass
class Parts:
    counts: dict[str, list[int]] = field(default_factory=dict)

    def add(self, name: str, value: int) -> None:
        self.counts.setdefault(name, []).append(value)


def conversations(limit: int | None) -> list[Conversation]:
    """Each document of the shared sets, planned by the pipeline with the local model's limits."""
    from chatocr import ChatOCR
    from chatocr.evaluation.datasets import load_dataset
    from chatocr.extraction.prepared import PreparedDocument
    from chatocr.llm.loaded import vocabulary_counter

    ocr = ChatOCR(llm="local", ocr="rapid", llm_options={"counter": vocabulary_counter()})
    out: list[Conversation] = []

    async def plan_all() -> None:
        for name in SETS:
            dataset = load_dataset(DATA / name, ocr.library)
            keys = list(dataset.fields)
            request = ocr.request(keys, dataset.scenario)
            for doc in dataset.documents[:limit]:
                prepared = PreparedDocument.of(await ocr.read(doc.image))
                task = ocr.pipeline.build_task(prepared.text, request.scenario, request, prepared.language)
                plan = ocr.pipeline.plan(prepared, task)
                out.append(Conversation(dataset.name, doc.id, keys, list(plan.messages), prepared.text))

    asyncio.run(plan_all())
    return out


def tokenizer() -> Callable[[str], int]:
    """Exact token counts of the shipped model (its vocabulary alone), special tokens parsed."""
    from chatocr.llm.loaded import get_llama
    from chatocr.llm.model_files import resolve_model_path

    path = resolve_model_path(None)
    vocab = get_llama((str(path), "vocab_only"), model_path=str(path), vocab_only=True, verbose=False).llama
    return lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True))


def chatml(messages: list[Any]) -> str:
    """The Qwen chat template, as the GGUF's own template writes these messages."""
    turns = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages)
    return turns + "<|im_start|>assistant\n"


def measure(conv: Conversation, tokens: Callable[[str], int], parts: Parts) -> None:
    """The token count of each part of one conversation."""
    final = conv.final
    head, tail = final.content[: final.stable_head], final.content[final.stable_head :]
    text = conv.text
    after = tail[tail.find(text) + len(text) :]
    prefix = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in conv.messages[:-1])
    prefix += f"<|im_start|>user\n{head}"
    whole = tokens(chatml(conv.messages))
    kept = tokens(prefix)
    parts.add("whole prompt", whole)
    parts.add("kept prefix", kept)
    parts.add("  system prompt", tokens(conv.messages[0].content))
    parts.add("  examples' text", sum(tokens(m.content) for m in conv.messages[1:-1] if m.kind == "examples"))
    parts.add("  examples' answers", sum(tokens(m.content) for m in conv.messages[1:-1] if m.kind == "answers"))
    parts.add("  task's opening", tokens(head))
    parts.add("the document's own", whole - kept)
    text_tokens = tokens(text)
    parts.add("  reading-order text", text_tokens)
    parts.add("    layout gaps (saved as one space)", text_tokens - tokens(GAP.sub(" ", text)))
    parts.add("    layout gaps (saved as a tab)", text_tokens - tokens(GAP.sub("\t", text)))
    parts.add("    line breaks (count)", text.count("\n"))
    parts.add("    digits (count)", sum(ch.isdigit() for ch in text))
    lines = text.splitlines()
    amounts = [line for line in lines if len(AMOUNT.findall(line)) >= 2]
    parts.add("    rows with 2+ amounts", sum(tokens(line) + 1 for line in amounts))
    seen: set[str] = set()
    repeated = 0
    for line in lines:
        if line.strip() in seen and len(line.strip()) > 3:
            repeated += tokens(line) + 1
        seen.add(line.strip())
    parts.add("    repeated lines", repeated)
    parts.add("    separator runs (saved at 3 characters)", text_tokens - tokens(SEPARATOR.sub(r"\1\1\1", text)))
    parts.add("  after the text (fence, end of turn)", tokens(after + "<|im_end|>\n<|im_start|>assistant\n"))


def token_table(convs: list[Conversation], tokens: Callable[[str], int]) -> None:
    by_set: dict[str, Parts] = {}
    for conv in convs:
        measure(conv, tokens, by_set.setdefault(conv.dataset, Parts()))
    names = list(by_set)
    heads = [f"{n} ({len(by_set[n].counts['whole prompt'])}): mean tokens" for n in names]
    print("\n| part | " + " | ".join(heads) + " |")
    print("|---|" + "---|" * len(names))
    for part in by_set[names[0]].counts:
        cells = []
        for name in names:
            values = by_set[name].counts[part]
            mean = statistics.mean(values)
            own = statistics.mean(by_set[name].counts["the document's own"])
            share = f" ({mean / own:.1%} of its own)" if part.startswith("    ") and "count" not in part else ""
            cells.append(f"{mean:.1f}{share}")
        print(f"| {part} | " + " | ".join(cells) + " |")


# -- seconds on the real model --------------------------------------------------------------------


def variants(conv: Conversation) -> dict[str, list[Any]]:
    """The conversation as sent and each variant of it (only the document's part or the
    examples change)."""
    final = conv.final
    text = conv.text

    def with_text(new: str) -> list[Any]:
        content = final.content.replace(text, new)
        return [*conv.messages[:-1], replace(final, content=content)]

    keys = json.dumps(conv.keys, ensure_ascii=False)
    closing = replace(final, content=final.content + OLD_CLOSING.format(keys=keys))
    no_examples = [m for m in conv.messages if m.kind not in ("examples", "answers")]
    return {
        "as sent": conv.messages,
        "closing restated": [*conv.messages[:-1], closing],
        "gaps as tabs": with_text(GAP.sub("\t", text)),
        "gaps as one space": with_text(GAP.sub(" ", text)),
        "no examples": no_examples,
    }


def timed(convs: list[Conversation], count: int) -> None:
    """Prompt-evaluation seconds of each variant's own tokens, document by document, interleaved."""
    from chatocr.llm import ChatSettings, get_chat_model

    model = get_chat_model("local")
    settings = ChatSettings(max_output_tokens=1, temperature=0)
    receipts = [c for c in convs if c.dataset == "sroie_train"][: count + 1]
    rows: dict[str, list[tuple[float, int]]] = {}
    for number, conv in enumerate(receipts):
        for name, messages in variants(conv).items():
            reply = model.chat_sync(messages, settings)
            perf = reply.raw["chatocr"]
            if number:  # the first receipt warms each variant's prefix up
                rows.setdefault(name, []).append((perf["prompt_eval_s"], perf["prompt_eval_tokens"]))
        print(f"timed {conv.document} (load {os.getloadavg()[0]:.2f})", flush=True)
    base_s = statistics.median(s for s, _ in rows["as sent"])
    print("\n| variant | own tokens (median) | prompt eval s (median) | ms per token | / as sent |")
    print("|---|---|---|---|---|")
    for name, values in rows.items():
        seconds = statistics.median(s for s, _ in values)
        tokens = statistics.median(t for _, t in values)
        per_token = statistics.median(s / t * 1000 for s, t in values if t)
        print(f"| {name} | {tokens:.0f} | {seconds:.2f} | {per_token:.1f} | {seconds / base_s:.2f}x |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="first N documents of each set (default: all)")
    parser.add_argument("--time", type=int, default=0, metavar="N", help="time N receipts on the real model")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    convs = conversations(args.limit)
    print(f"{len(convs)} documents; load {os.getloadavg()}")
    token_table(convs, tokenizer())
    if args.time:
        timed(convs, args.time)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
