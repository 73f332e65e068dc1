"""The memory's numpy index scores as chatocr.similarity's SimilarityIndex (to float32 precision; the measure
ExampleBank ranks with), through additions, removals and a round trip through its file; a file that
is not a whole index is refused."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from chatocr.memory.index import DENSE_MIN_DOCUMENTS, ArrayIndex, IndexFileError
from chatocr.similarity import SimilarityIndex, layout_tokens
from tests.memory.conftest import receipts

CHINESE = [
    "北京南站\nG123次\n2019年06月21日 08:35开\n二等座 ￥553.0元",
    "上海虹桥站\nD3069次\n2020年01月02日 12:00开\n一等座 ￥88.5元",
    "增值税专用发票\n购买方 名称：某某科技有限公司\n价税合计 ￥1130.00",
]


def _texts(count: int, seed: int = 3) -> list[str]:
    return [text for text, _ in receipts(count, seed=seed)] + CHINESE


def _reference(texts: list[str], query: str, layout_weight: float) -> np.ndarray:
    text = np.array(SimilarityIndex(texts).scores(query))
    if layout_weight <= 0:
        return text
    layout = np.array(SimilarityIndex(texts, tokenize=layout_tokens).scores(query))
    return (1 - layout_weight) * text + layout_weight * layout


def _ids(texts: list[str]) -> tuple[list[str], list[str]]:
    return [f"d{n}" for n in range(len(texts))], [f"h{n}" for n in range(len(texts))]


@pytest.mark.parametrize("count", [12, DENSE_MIN_DOCUMENTS + 40])  # sparse only; dense block for frequent terms
@pytest.mark.parametrize("layout_weight", [0.0, 0.4])
def test_scores_equal_similarity_index(count: int, layout_weight: float) -> None:
    texts = _texts(count)
    index = ArrayIndex.build(*_ids(texts), texts)
    for query in (texts[1] + "\nCASH 10.00", CHINESE[0].replace("G123", "G7"), "nothing alike at all", ""):
        ours = index.scores(query, layout_weight)
        assert ours == pytest.approx(_reference(texts, query, layout_weight), abs=1e-5)


def test_additions_and_removals_count_as_a_rebuild_would() -> None:
    texts = _texts(30)
    ids, digests = _ids(texts)
    index = ArrayIndex.build(ids[:20], digests[:20], texts[:20]).extended(ids[20:], digests[20:], texts[20:])
    index = index.without(["d3", "d7"])
    live = [t for n, t in enumerate(texts) if n not in (3, 7)]
    query = texts[5] + "\nEXTRA LINE"
    scores = index.scores(query, 0.3)
    assert scores[3] == scores[7] == -1.0  # removed: never ranked
    kept = np.delete(scores, [3, 7])
    assert kept == pytest.approx(_reference(live, query, 0.3), abs=1e-5)
    compact = index.compacted()
    assert len(compact.ids) == len(live) and "d3" not in compact.ids
    assert compact.scores(query, 0.3) == pytest.approx(kept, abs=1e-5)
    # The same id again replaces the document: its new text is what counts.
    novel = "KEDAI RUNCIT BARU\nJUMLAH 12.00"
    replaced = compact.extended(["d5"], ["new"], [novel])
    assert replaced.rank(novel, limit=1)[0][0] == "d5"
    assert replaced.digest("d5") == "new" and len(replaced) == len(live)


def test_rank_is_best_first_with_ties_in_joining_order() -> None:
    texts = ["ALPHA SHOP\nTOTAL 1.00", "BETA STORE\nTOTAL 2.00", "ALPHA SHOP\nTOTAL 1.00", "GAMMA"]
    index = ArrayIndex.build(*_ids(texts), texts)
    ranked = index.rank("ALPHA SHOP\nTOTAL 3.00", limit=3)
    assert [doc for doc, _ in ranked] == ["d0", "d2", "d1"]
    assert ranked[0][1] == ranked[1][1] > ranked[2][1]
    assert [doc for doc, _ in index.rank("ALPHA SHOP", limit=5, exclude=[0])][:1] == ["d2"]
    assert index.rank("x", limit=0) == []


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    texts = _texts(DENSE_MIN_DOCUMENTS + 10)
    index = ArrayIndex.build(*_ids(texts), texts).without(["d2"])
    index.save(tmp_path / "index.npz")
    loaded = ArrayIndex.load(tmp_path / "index.npz")
    assert "d2" not in loaded.ids and len(loaded) == len(index)  # saved compacted
    query = texts[9] + "\nTHANK YOU"
    ours, theirs = loaded.rank(query, limit=5, layout_weight=0.2), index.rank(query, limit=5, layout_weight=0.2)
    assert [doc for doc, _ in ours] == [doc for doc, _ in theirs]
    assert [score for _, score in ours] == pytest.approx([score for _, score in theirs], abs=1e-6)


def _npz(**arrays: object) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def test_a_file_that_is_not_a_whole_index_is_refused(tmp_path: Path) -> None:
    texts = _texts(8)
    good = tmp_path / "good.npz"
    ArrayIndex.build(*_ids(texts), texts).save(good)
    data = good.read_bytes()
    cases = {
        "empty": b"",
        "garbage": b"not an index at all" * 10,
        "truncated": data[: len(data) // 2],
        "no arrays": _npz(format=np.asarray([1])),
        "other format": _npz(format=np.asarray([99])),
        # A pickled object array: np.load refuses it (allow_pickle=False), so nothing in it runs.
        "pickle": _npz(format=np.asarray([1]), ids=np.asarray([{"x": 1}], dtype=object)),
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(content)
        with pytest.raises(IndexFileError):
            ArrayIndex.load(path)
    # Consistent-looking arrays whose postings point past the documents.
    with zipfile.ZipFile(good) as archive, np.load(good) as arrays:
        members = {name[:-4]: arrays[name[:-4]] for name in archive.namelist()}
    members["text_docs"] = members["text_docs"] + 1000
    bad = tmp_path / "bad.npz"
    bad.write_bytes(_npz(**members))
    with pytest.raises(IndexFileError, match="names no document"):
        ArrayIndex.load(bad)
