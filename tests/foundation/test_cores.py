"""The cores this process's own OCR is busy on (chatocr/cores.py): announced while an engine
recognises a page, read by the local model's batch engine before every step."""

from __future__ import annotations

import threading

from PIL import Image

from chatocr import cores
from chatocr.ocr.base import ImageEngine, RawLine


def test_taking_announces_cores_for_the_block_only_and_wakes_a_waiter() -> None:
    assert cores.taken() == 0
    released = threading.Event()
    seen: list[int] = []

    def waiter() -> None:
        released.wait()
        seen.append(cores.wait_until_below(1, timeout=60))

    thread = threading.Thread(target=waiter)
    thread.start()
    with cores.taking(2):
        assert cores.taken() == 2
        with cores.taking(1):
            assert cores.taken() == 3
        assert cores.wait_until_below(3, timeout=0) == 2  # already below: no wait
        released.set()
    thread.join(timeout=60)
    assert seen == [0] and cores.taken() == 0


def test_a_failed_block_still_gives_its_cores_back() -> None:
    try:
        with cores.taking(2):
            raise RuntimeError("the OCR failed")
    except RuntimeError:
        pass
    assert cores.taken() == 0


class _Counting(ImageEngine):
    """An engine whose recognition notes what the process announced while it ran."""

    name = "counting"

    def __init__(self, threads: int | None) -> None:
        super().__init__()
        self.threads = threads
        self.seen: list[int] = []

    def cores(self) -> int:
        return self.threads or super().cores()

    def _recognize(self, image: Image.Image) -> list[RawLine]:
        self.seen.append(cores.taken())
        return [RawLine("TOTAL 9.00", [[0, 0], [90, 0], [90, 10], [0, 10]], 0.99)]


def test_an_engine_announces_its_threads_while_it_recognises_a_page() -> None:
    image = Image.new("RGB", (120, 40), "white")
    image.paste((0, 0, 0), (10, 10, 100, 20))  # not blank: the input checks refuse a blank page
    one = _Counting(threads=1)
    assert one.read(image).lines[0].text == "TOTAL 9.00"
    every = _Counting(threads=None)
    every.read(image)
    assert one.seen == [1] and every.seen == [cores.usable_cpus()]
    assert cores.taken() == 0  # given back after the page
