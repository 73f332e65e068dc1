"""`chatocr calibrate DATA_DIR... --scenario S`: fit a scenario's calibrated confidence on labelled
documents, and `chatocr eval --calibrate` (the same fit, with the evaluation's report).

    chatocr calibrate ../shared/data/sroie_train --scenario retail_receipt            # beside its YAML
    chatocr calibrate my_invoices/ --scenario my_invoice.yaml --out my_invoice.calibration.json

The documents are extracted with the default strategy (per-document outcomes cached, as
`chatocr eval` caches them), each field's signals and whether it was right under the evaluation's
normalisation become a labelled sample, and a logistic calibration is fitted on all of them and
scored by 5-fold cross-validation over documents (docs/trust.md). The file is small JSON, versioned
with the scenario; `chatocr extract` then gives each field the probability that it is right and
accepts or sends it to review (`--accept-precision 0.99`).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from chatocr.api import ChatOCR
from chatocr.calibration import save_calibration
from chatocr.errors import CalibrationError, ConfigError
from chatocr.evaluation.calibrating import evaluate_trust, report_dict, scenario_files
from chatocr.evaluation.datasets import Dataset, load_dataset
from chatocr.evaluation.runner import Evaluator
from chatocr.evaluation.strategies import Strategy, resolve_strategies
from chatocr.evaluation.trust_report import print_trust
from chatocr.fileio import check_output_path

__all__ = ["add_calibrate_options", "calibrate_from_run", "register"]

_PLAIN: dict[str, Any] = {"markup": False, "highlight": False, "soft_wrap": True}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit a scenario's calibrated confidence on labelled documents (written beside the scenario)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data_dirs", nargs="+", type=Path, metavar="DATA_DIR", help="set with images/, labels/, [ocr/]")
    p.add_argument("-s", "--scenario", required=True, help="scenario name or YAML file the documents are")
    p.add_argument(
        "-o", "--out", type=Path, metavar="FILE", help="the calibration file (default: beside the scenario's YAML)"
    )
    p.add_argument("-l", "--llm", metavar="PROVIDER[:MODEL]", help="chat backend (default: config, else local)")
    p.add_argument("--ocr", metavar="ENGINE", help="OCR engine: rapid, paddle, vlm, or text for the sets' ocr/ files")
    p.add_argument("-c", "--config", type=Path, metavar="FILE", help="a chatocr TOML config file")
    p.add_argument("--limit", type=int, metavar="N", help="first N documents of each set (sorted by id)")
    p.add_argument(
        "--map", action="append", default=[], metavar="LABEL_KEY=FIELD", help="map a label key to a scenario field"
    )
    p.add_argument("-j", "--concurrency", type=int, metavar="N", help="documents in flight (default: the config's)")
    p.add_argument("--cache-dir", type=Path, metavar="DIR", help="per-document result cache (as chatocr eval's)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write cached results")
    p.add_argument("--reliability", type=Path, metavar="FILE.png", help="also draw the reliability diagram")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-document progress lines")
    p.set_defaults(handler=run)


def add_calibrate_options(parser: argparse.ArgumentParser) -> None:
    """`chatocr eval`'s options for the trust section and the calibration files."""
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="fit each scenario's calibrated confidence from the run (written beside the scenario, or to "
        "--calibration-dir) and report it by cross-validation beside today's confidence, with each check's precision",
    )
    parser.add_argument(
        "--calibration-dir", type=Path, metavar="DIR", help="with --calibrate: write the calibration files here"
    )
    parser.add_argument(
        "--reliability",
        type=Path,
        metavar="FILE.png",
        help="with --calibrate: the reliability diagram (default: beside --out or --markdown)",
    )


def _png_for(args: argparse.Namespace) -> Path | None:
    given: Path | None = getattr(args, "reliability", None)
    if given is not None:
        return given
    for path in (getattr(args, "out", None), getattr(args, "markdown", None)):
        if path is not None:
            return Path(path).with_suffix(".reliability.png")
    return None


def calibrate_from_run(
    args: argparse.Namespace,
    evaluator: Evaluator,
    datasets: Sequence[Dataset],
    strategies: Sequence[Strategy],
    err: Console,
    *,
    out: Path | None = None,
) -> dict[str, Any]:
    """After an evaluation run: fit, write the files, print the trust tables; the report's section."""
    chosen = next((s for s in strategies if s.kind == "chatocr"), None)
    if chosen is None:
        raise ConfigError("--calibrate needs a chatocr strategy (the baseline has no signals).")
    library = evaluator.chat.library
    evaluation = evaluate_trust(datasets, evaluator.outcomes, chosen.name, library)
    section = report_dict(evaluation, png=_png_for(args))
    section["strategy"] = chosen.name
    if out is not None:
        targets = dict.fromkeys(evaluation.calibrations, out)
    else:
        targets = scenario_files(evaluation.calibrations, library, getattr(args, "calibration_dir", None))
    label = evaluator.model_label(chosen)  # a calibration is the model's own: others do not use it
    for name, fitted in evaluation.calibrations.items():
        calibration = replace(fitted, model=label)
        save_calibration(calibration, targets[name])
        held = calibration.held_out
        coverage = "-" if held is None else f"{held.coverage(0.99):.1%}"
        err.print(
            f"calibration for {name}: {targets[name]} (fitted with {label} on "
            f"{calibration.fitted_on.get('documents')} documents, "
            f"{calibration.fitted_on.get('fields')} fields; held out: ECE {held.ece if held else float('nan'):.3f}, "
            f"coverage at 99 % precision {coverage})",
            **_PLAIN,
        )
    section["files"] = {name: str(path) for name, path in targets.items()}
    for name, why in evaluation.unfitted.items():
        err.print(f"no calibration for {name}: {why}", **_PLAIN)
    return section


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit must be at least 1.")
    for path in (args.out, args.reliability):
        if path is not None:
            check_output_path(path)
    chat = ChatOCR(llm=args.llm, ocr=args.ocr, config=args.config)
    scenario = chat.library.resolve(args.scenario).name
    mapping = _mapping(args.map)
    datasets = [
        load_dataset(d, chat.library, scenario=scenario, field_map=mapping).subset(args.limit) for d in args.data_dirs
    ]
    err = Console(stderr=True, soft_wrap=True)
    ocr_name = args.ocr or chat.config.ocr
    evaluator = Evaluator(
        chat,
        ocr_source="text" if ocr_name == "text" else "image",
        cache_dir_path=args.cache_dir,
        use_cache=not args.no_cache,
        progress=None if args.quiet else (lambda line: err.print(line, **_PLAIN)),
        concurrency=chat.config.concurrency if args.concurrency is None else args.concurrency,
        ocr_name=ocr_name,
    )
    strategies = resolve_strategies(["default"])
    command = " ".join(shlex.quote(w) for w in ["chatocr", "calibrate", *map(str, args.data_dirs), "-s", scenario])
    asyncio.run(evaluator.run(datasets, strategies, command=command))
    section = calibrate_from_run(args, evaluator, datasets, strategies, err, out=args.out)
    if scenario not in section["files"]:
        why = section["unfitted"].get(scenario, "no document was extracted")
        raise CalibrationError(
            f"No calibration for {scenario}: {why}",
            hint="Label more documents, including some the extraction gets wrong.",
        )
    print_trust(section, Console())
    return 0


def _mapping(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--map expects LABEL_KEY=FIELD, got {item!r}.")
        out[key.strip()] = value.strip()
    return out
