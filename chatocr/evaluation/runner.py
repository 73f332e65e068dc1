"""Run strategies over labelled sets on the same OCR results and report accuracy and cost.

    evaluator = Evaluator(ChatOCR(llm="local", ocr="rapid"), cache_dir=...)
    report = await evaluator.run([load_dataset(path, evaluator.chat.library)], resolve_strategies(["compare"]))
    print_report(report)

Each document is OCR'd once (through the OCR cache) and every strategy extracts from that same
OCRDocument. Per (strategy, document) outcomes are cached on disk, keyed by everything that
determines them (strategy settings, model, OCR text, keys, scenario, prompt files, extraction
settings, and chatocr's own code: a changed snapping rule must not be scored by the old rule's
outcomes), so an interrupted run resumes where it stopped and a repeated run is free. Documents
are processed in order with every strategy on each, so a partial run still compares all
strategies on the same documents.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from chatocr.api import ChatOCR
from chatocr.conversation.planner import PlanExample
from chatocr.errors import ChatOCRError
from chatocr.evaluation.baseline import run_baseline
from chatocr.evaluation.calibrating import trust_record
from chatocr.evaluation.datasets import Dataset, Document
from chatocr.evaluation.machine import machine_info
from chatocr.evaluation.metrics import get_normalizer
from chatocr.evaluation.outcome import DocOutcome
from chatocr.evaluation.scoring import build_report
from chatocr.evaluation.strategies import Strategy
from chatocr.extraction.examples import ExampleBank
from chatocr.extraction.grounding import TextIndex
from chatocr.extraction.pipeline import ExtractionPipeline
from chatocr.extraction.remembered import ExampleMemory
from chatocr.extraction.request import ExtractionRequest
from chatocr.fileio import JSONFileCache, file_sha256
from chatocr.llm.registry import get_chat_model
from chatocr.memory import DocumentKey
from chatocr.ocr.types import OCRDocument
from chatocr.resources import builtin_prompts_dir, cache_dir
from chatocr.scenarios.keys import parse_key
from chatocr.scenarios.loader import ScenarioLibrary
from chatocr.scenarios.model import FieldSpec, Scenario
from chatocr.secrets import redact_data
from chatocr.typed.schema import TypedSchema

__all__ = ["DocOutcome", "Evaluator", "FixedOrderBank", "build_report", "position_pairs", "same_documents"]


CACHE_VERSION = 2  # 2: outcomes keep each field's signals of correctness (evaluation/calibrating.py)
Progress = Callable[[str], None]


class FixedOrderBank(ExampleBank):
    """PP-ChatOCR v1's way: a scenario's examples in the order its file gives them."""

    def __init__(self, library: ScenarioLibrary) -> None:
        super().__init__(library)
        self._order = {
            s.example_id(i): n for n, (s, i) in enumerate((s, i) for s in library for i in range(len(s.examples)))
        }

    def select(
        self, text: str, fields: Sequence[FieldSpec], scenario: Scenario | None, *, focus: bool = True
    ) -> list[PlanExample]:
        ranked = super().select(text, fields, scenario, focus=focus)
        return sorted(ranked, key=lambda e: self._order.get(e.id, len(self._order)))


def _scenario_key(scenario: Scenario) -> dict[str, Any]:
    """The scenario as part of a cache key. Item keys' `required` and `choices` (new with typed
    extraction) are left out at their defaults, so that results cached before they existed,
    for the same scenario, stay valid."""
    data = scenario.model_dump(mode="json")
    for field_data in data["fields"]:
        for item in field_data["items"]:
            if not item.get("required"):
                item.pop("required", None)
            if not item.get("choices"):
                item.pop("choices", None)
    return data


def _sha(material: Any) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


@functools.cache
def _code_digest() -> str:
    """The chatocr package's Python source, hashed: outcomes are the code's as much as the model's."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _prompts_digest(extra_dirs: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for directory in [builtin_prompts_dir(), *(Path(d) for d in extra_dirs)]:
        for path in sorted(Path(directory).glob("*/*.j2")):
            digest.update(str(path.relative_to(directory)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class ResultCache(JSONFileCache):
    """One small JSON file per (strategy, document) outcome."""

    def get(self, key: str) -> DocOutcome | None:
        data = self.get_json(key)
        try:
            return DocOutcome.from_dict(data) if data is not None else None
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def put(self, key: str, outcome: DocOutcome) -> None:
        self.put_json(key, redact_data(asdict(outcome)))  # predictions may echo a key: masked


class Evaluator:
    """Runs strategies with one ChatOCR's model, OCR engine and scenarios."""

    def __init__(
        self,
        chat: ChatOCR,
        *,
        ocr_source: str = "image",
        cache_dir_path: Path | None = None,
        use_cache: bool = True,
        progress: Progress | None = None,
        concurrency: int = 1,
        ocr_name: str | None = None,
        cached_only: bool = False,
        schemas: Mapping[str, TypedSchema] | None = None,
        keys: Sequence[str] | None = None,
        memory: ExampleMemory | None = None,
    ) -> None:
        """ocr_source: "image" runs the OCR engine on each image; "text" reads the set's ocr/ files.
        schemas: per set name, a typed request (`eval --schema`) used instead of the set's keys.
        keys: `eval --keys` items in the key syntax (name:type=description): a set's evaluated
        field of that name is asked for with that type and description.
        memory: a memory of reviewed documents to take examples from, searched leave-one-out (a
        document never gets its own example, nor one of its very text); None: no memory, whatever
        `chat` was configured with (a measurement must not depend on what this machine reviewed)."""
        self.chat = chat
        self.ocr_source = ocr_source
        self.cache = ResultCache(cache_dir_path or cache_dir("eval")) if use_cache else None
        self.progress = progress or (lambda message: None)
        self.concurrency = max(1, concurrency)
        self.ocr_name = ocr_name or chat.engine.name
        # Report only documents whose every outcome is already cached (a running or interrupted
        # run's results so far); run nothing.
        self.cached_only = cached_only
        self.skipped: list[str] = []
        self._pipelines: dict[str, ExtractionPipeline] = {}
        self._requests: dict[tuple[str, str], ExtractionRequest] = {}
        self._prompts = _prompts_digest(chat.config.prompt_dirs)
        self.ocr_docs: dict[tuple[str, str], OCRDocument] = {}
        self.ocr_errors: dict[tuple[str, str], str] = {}
        self.schemas = dict(schemas or {})
        self.keys = {parse_key(item).name: item for item in keys or ()}
        self.outcomes: list[DocOutcome] = []  # of the last run, for checks beyond the report
        self.memory = None if memory is None else replace(memory, leave_one_out=True)

    def use_memory(self, memory: ExampleMemory | None) -> None:
        """Take examples from `memory` from now on (leave-one-out; None: no memory), as the
        learning curve does for each set (evaluation/learning.py)."""
        self.memory = None if memory is None else replace(memory, leave_one_out=True)
        self._pipelines.clear()

    def model_label(self, strategy: Strategy) -> str:
        """`provider:model` of the chat model `strategy` runs with (a calibration records it)."""
        model = self._pipeline_for(strategy).model
        return model.label if model is not None else ""

    # -- plumbing --------------------------------------------------------------------------------

    def _pipeline_for(self, strategy: Strategy) -> ExtractionPipeline:
        """The ChatOCR's pipeline (same model, OCR engine and scenarios), set up for a resolved
        strategy's example selection and focus."""
        focus = strategy.focus is True
        key = f"{strategy.selection}/{focus}/{strategy.llm}/{strategy.overrides}"
        pipeline = self._pipelines.get(key)
        if pipeline is None:
            base = self.chat.pipeline
            # The accuracy levers' settings are validated where they are parsed (strategies.py).
            config = base.config.model_copy(update={"focus": focus, **dict(strategy.overrides)})
            bank = FixedOrderBank(self.chat.library) if strategy.selection == "fixed" else None
            model = get_chat_model(strategy.llm) if strategy.llm else None  # e.g. a fine-tuned model
            pipeline = base.derive(config=config, bank=bank, model=model, memory=self.memory)
            self._pipelines[key] = pipeline
        return pipeline

    def _keys_for(self, dataset: Dataset) -> list[str]:
        """The set's evaluated fields as asked: `--keys` items where given, else the names."""
        return [self.keys.get(name, name) for name in dataset.fields]

    def _cache_key(self, strategy: Strategy, dataset: Dataset, document: OCRDocument) -> str:
        cfg = self.chat.config
        scenario = self.chat.library.get(dataset.scenario)
        schema = self.schemas.get(dataset.name)
        # Only what is given joins the key: the runs without --schema or --keys keep their cache.
        typed: list[Any] = [schema.json_schema] if schema is not None else []
        typed += [self._keys_for(dataset)] if self.keys else []
        # What the memory holds joins the key only with a memory: runs without one keep their cache.
        typed += [self.memory.fingerprint(dataset.scenario)] if self.memory is not None else []
        return _sha(
            [
                CACHE_VERSION,
                _code_digest(),
                strategy.settings(),
                self.chat.model.provider,
                self.chat.model.model,
                repr(self.chat.model.limits),
                document.text(),
                dataset.fields,
                dataset.scenario,
                _scenario_key(scenario),
                self._prompts,
                [cfg.max_steps, cfg.max_tokens, cfg.temperature, cfg.max_output_tokens],
                [cfg.snap, cfg.field_reask, cfg.extractive, cfg.example_layout, cfg.positions],
                [cfg.second_look, cfg.second_look_below],
                [s.name for s in self.chat.library] if strategy.route == "classifier" else None,
                *typed,
            ]
        )

    async def read(self, dataset: Dataset, doc: Document) -> OCRDocument | None:
        key = (dataset.name, doc.id)
        if key in self.ocr_docs:
            return self.ocr_docs[key]
        source = doc.ocr if self.ocr_source == "text" else doc.image
        if source is None:
            what = "an ocr/ file" if self.ocr_source == "text" else "an image"
            self.ocr_errors[key] = f"{doc.id}: no {what}"
            return None
        try:
            document = await self.chat.read(source)
        except ChatOCRError as exc:
            self.ocr_errors[key] = f"{type(exc).__name__}: {exc.message}"
            return None
        # The OCR cache hands back the path the content was first read from (a copy of the set
        # elsewhere): the document is this set's file, which a leave-one-out memory goes by.
        document = replace(document, source=str(source))
        self.ocr_docs[key] = document
        return document

    # -- running ---------------------------------------------------------------------------------

    def cached(self, strategy: Strategy, dataset: Dataset, doc: Document, document: OCRDocument) -> DocOutcome | None:
        if self.cache is None:
            return None
        hit = self.cache.get(self._cache_key(strategy, dataset, document))
        if hit is not None:
            # The key is what determines the outcome, not whose it is: a copy of a document (or
            # the same page turned) hits the first one's entry, and is reported under its own id.
            hit.cached = True
            hit.strategy, hit.dataset, hit.document = strategy.name, dataset.name, doc.id
        return hit

    async def run_one(self, strategy: Strategy, dataset: Dataset, doc: Document, document: OCRDocument) -> DocOutcome:
        hit = self.cached(strategy, dataset, doc, document)
        if hit is not None:
            return hit
        key = self._cache_key(strategy, dataset, document) if self.cache is not None else ""
        if strategy.kind == "baseline":
            outcome = await self._run_baseline(strategy, dataset, doc, document)
        else:
            outcome = await self._run_chatocr(strategy, dataset, doc, document)
        if self.cache is not None and outcome.error is None:
            self.cache.put(key, outcome)
        return outcome

    def _request_for(self, strategy: Strategy, dataset: Dataset, pipeline: ExtractionPipeline) -> ExtractionRequest:
        """What every document of `dataset` is asked under `strategy`, resolved once."""
        key = (strategy.name, dataset.name)
        request = self._requests.get(key)
        if request is None:
            given = strategy.route == "given"
            schema = self.schemas.get(dataset.name)
            request = pipeline.request(
                None if schema is not None else self._keys_for(dataset),
                dataset.scenario if given else None,
                schema=schema,
                classify=None if given else True,
                policy=strategy.plan_policy(),  # raises for a strategy that was not resolved
            )
            self._requests[key] = request
        return request

    async def _run_chatocr(
        self, strategy: Strategy, dataset: Dataset, doc: Document, document: OCRDocument
    ) -> DocOutcome:
        pipeline = self._pipeline_for(strategy)
        result, _ = await pipeline.extract(document, self._request_for(strategy, dataset, pipeline))
        usage = result.usage
        return DocOutcome(
            dataset=dataset.name,
            document=doc.id,
            strategy=strategy.name,
            values={name: f.value for name, f in result.fields.items()},
            statuses={name: f.status for name, f in result.fields.items()},
            answers={name: f.answer for name, f in result.fields.items() if f.answer is not None},
            scenario=result.scenario,
            route=result.route.mode if result.route else None,
            examples=list(result.examples),
            calls=usage["calls"],
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            llm_seconds=round(result.timings.get("llm_s", 0.0), 3),
            seconds=round(result.timings.get("total_s", 0.0) - result.timings.get("ocr_s", 0.0), 3),
            steps=result.steps,
            error=None if result.error is None else f"{result.error['type']}: {result.error['message']}",
            data=result.to_dict()["data"] if dataset.name in self.schemas else None,
            **trust_record(result),
        )

    async def _run_baseline(
        self, strategy: Strategy, dataset: Dataset, doc: Document, document: OCRDocument
    ) -> DocOutcome:
        scenario = self.chat.library.get(dataset.scenario)
        language = strategy.language or scenario.language
        layout = document.layout()
        cfg = self.chat.config
        outcome = await run_baseline(
            self.chat.model,
            layout.text,
            dataset.fields,
            language,
            max_output_tokens=cfg.max_output_tokens,
            timeout=cfg.timeout,
            prompt_dirs=cfg.prompt_dirs,
        )
        index = TextIndex(layout)
        statuses: dict[str, str] = {}
        for name, value in outcome.values.items():
            if value is None or str(value).strip() == "":
                statuses[name] = "missing"
                continue
            spec = scenario.field(name)
            kind = spec.type.value if spec is not None else "text"
            statuses[name] = "grounded" if index.find(str(value), kind) is not None else "ungrounded"
        reply = outcome.reply
        return DocOutcome(
            dataset=dataset.name,
            document=doc.id,
            strategy=strategy.name,
            values=outcome.values,
            statuses=statuses,
            scenario=dataset.scenario,
            route="given",
            calls=1,
            prompt_tokens=(reply.usage.prompt_tokens or 0) if reply else 0,
            completion_tokens=(reply.usage.completion_tokens or 0) if reply else 0,
            llm_seconds=round(reply.latency_s, 3) if reply else 0.0,
            seconds=round(outcome.seconds, 3),
            steps=1,
            error=outcome.error,
        )

    async def run(
        self, datasets: Sequence[Dataset], strategies: Sequence[Strategy], *, command: str = ""
    ) -> dict[str, Any]:
        resolved = [s.resolved(self.chat.config) for s in strategies]
        if self.memory is not None:  # the same document under another file is left out too
            self.memory.twins.update(same_documents(datasets))
        started = time.perf_counter()
        machine = machine_info()
        outcomes: list[DocOutcome] = []
        limit = asyncio.Semaphore(self.concurrency)
        total = sum(len(d.documents) for d in datasets)
        done = 0

        async def one(dataset: Dataset, doc: Document) -> list[DocOutcome]:
            nonlocal done
            async with limit:
                document = await self.read(dataset, doc)
                results: list[DocOutcome] = []
                if self.cached_only and (
                    document is None or any(self.cached(s, dataset, doc, document) is None for s in resolved)
                ):
                    self.skipped.append(f"{dataset.name}/{doc.id}")
                    return results
                for strategy in resolved:
                    if document is None:
                        results.append(
                            DocOutcome(
                                dataset.name, doc.id, strategy.name, error=self.ocr_errors.get((dataset.name, doc.id))
                            )
                        )
                        continue
                    outcome = await self.run_one(strategy, dataset, doc, document)
                    results.append(outcome)
                done += 1
                cached = sum(o.cached for o in results)
                self.progress(
                    f"[{done}/{total}] {dataset.name}/{doc.id}: "
                    + ", ".join(
                        f"{o.strategy} {_doc_score(dataset, doc, o)}{' (cached)' if o.cached else ''}"
                        f"{' ERROR ' + (o.error or '')[:80] if o.error else ''}"
                        for o in results
                    )
                    + (f" [{cached} cached]" if cached else "")
                )
                return results

        # Round-robin over the sets, so that a partial run has documents of every set.
        order: list[tuple[Dataset, Document]] = []
        for index in range(max((len(d.documents) for d in datasets), default=0)):
            order += [(d, d.documents[index]) for d in datasets if index < len(d.documents)]
        batches = await asyncio.gather(*(one(dataset, doc) for dataset, doc in order))
        for batch in batches:
            outcomes.extend(batch)
        self.outcomes = outcomes
        pairs = {d.name: position_pairs(d, self.chat.library) for d in datasets}
        report = build_report(datasets, resolved, outcomes, self.ocr_docs, pairs)
        report["run"] = {
            "command": command,
            "llm": f"{self.chat.model.provider}:{self.chat.model.model}",
            "ocr": "the sets' ocr/ files (text engine)" if self.ocr_source == "text" else self.ocr_name,
            "machine": machine,
            "wall_seconds": round(time.perf_counter() - started, 1),
            "result_cache": str(self.cache.directory) if self.cache is not None else None,
            "cached_only": self.cached_only,
            "skipped_not_cached": self.skipped,
        }
        return report


def same_documents(datasets: Sequence[Dataset]) -> dict[str, tuple[DocumentKey, ...]]:
    """Per document (its file's resolved path), the other files of its set that are the same
    document: identical labels, at least two of them filled (the shared train tickets hold two
    tickets photographed twice, as a JPEG and a PNG). A leave-one-out memory leaves them out too:
    a copy of the document would hand the model its own answer."""
    twins: dict[str, tuple[DocumentKey, ...]] = {}
    for dataset in datasets:
        groups: dict[str, list[DocumentKey]] = {}
        for doc in dataset.documents:
            identity = doc.image or doc.ocr
            values = {f: get_normalizer(dataset.normalizers.get(f, "text"))(doc.labels.get(f)) for f in dataset.fields}
            if identity is None or sum(bool(v) for v in values.values()) < 2:
                continue
            key = DocumentKey(str(identity.resolve()), file_sha256(identity))
            groups.setdefault(json.dumps(values, sort_keys=True), []).append(key)
        for keys in groups.values():
            for key in keys if len(keys) > 1 else ():
                twins[key.path] = tuple(other for other in keys if other != key)
    return twins


def _doc_score(dataset: Dataset, doc: Document, outcome: DocOutcome) -> str:
    right = 0
    for name in dataset.fields:
        norm = get_normalizer(dataset.normalizers.get(name, "text"))
        right += norm(outcome.values.get(name)) == norm(doc.labels.get(name))
    return f"{right}/{len(dataset.fields)}"


def position_pairs(dataset: Dataset, library: ScenarioLibrary) -> list[tuple[str, str]]:
    """The fields of a set's scenario told apart by position (`before:`), among the set's fields."""
    try:
        scenario = library.get(dataset.scenario)
    except ChatOCRError:
        return []
    asked = set(dataset.fields)
    return [(f.name, f.before) for f in scenario.fields if f.before and f.name in asked and f.before in asked]
