"""How far extractive decoding can reach, without a model: of the labelled text-field values of
the first N documents of ../shared/data/sroie_train and cn_train_ticket, the share that equals one
of the page's strings (chatocr.extraction.extractive.page_strings, what the grammar allows), next to
the OCR ceiling (the label occurs in the OCR text), both with `chatocr eval`'s normalisation.

    .venv/bin/python benchmarks/extractive_reach.py 20 [DATA_DIR]

OCR: the `rapid` engine through the OCR cache (as `chatocr eval` reads them).
"""

import sys

from chatocr import ChatOCR
from chatocr.evaluation.datasets import load_dataset
from chatocr.evaluation.metrics import get_normalizer, normalize, ocr_contains
from chatocr.extraction.extractive import page_strings
from chatocr.llm.scripted import ScriptedChatModel

chat = ChatOCR(llm=ScriptedChatModel([]), ocr="rapid")
limit = int(sys.argv[1]) if len(sys.argv) > 1 else 20
data = sys.argv[2] if len(sys.argv) > 2 else "../shared/data"
for name in ("sroie_train", "cn_train_ticket"):
    ds = load_dataset(f"{data}/{name}", chat.library).subset(limit)
    scen = chat.library.get(ds.scenario)
    text_fields = [f for f in ds.fields if scen.field(f) and scen.field(f).type.value == "text"]
    counts = {f: [0, 0, 0] for f in text_fields}
    for doc in ds.documents:
        d = chat.pipeline.engine.read(doc.image)
        lay = d.layout()
        strings = {get_normalizer("text")(s) for s in page_strings(lay)}
        texts = [normalize(d.text(layout=True)), normalize(d.text(layout=False))]
        for f in text_fields:
            kind = ds.normalizers.get(f, "text")
            label = get_normalizer(kind)(doc.labels.get(f))
            if not label:
                continue
            counts[f][0] += 1
            counts[f][1] += ocr_contains(texts, doc.labels.get(f), kind)
            counts[f][2] += any(get_normalizer(kind)(s) == label for s in strings)
    for f, (n, ceil, ext) in counts.items():
        print(
            f"{name} {f}: labelled {n}, OCR ceiling {100 * ceil / n:.1f}%, reachable by extractive {100 * ext / n:.1f}%"
        )
