"""Batch extraction beyond one machine (extra `ray`): see chatocr/distributed/ray_batch.py and
docs/deployment.md. Ray is imported only when a run starts, so this package loads without it."""

from __future__ import annotations

from chatocr.distributed.ray_batch import ChatOCRSpec, Extractor, extract_dataset, extract_paths, init_ray

__all__ = ["ChatOCRSpec", "Extractor", "extract_dataset", "extract_paths", "init_ray"]
