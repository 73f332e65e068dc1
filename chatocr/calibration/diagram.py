"""The reliability diagram as a PNG, drawn with PIL (no plotting library).

Confidence bins along x, the share of right values along y: a calibrated confidence follows the
diagonal. Each series (today's confidence, the calibrated one) is a line through its bins' points,
each point's size growing with the bin's count; below, the bins' counts as bars. The legend gives
each series' expected calibration error and coverage at 99 % precision.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from chatocr.calibration.metrics import coverage_at_precision, expected_calibration_error, reliability_table
from chatocr.fileio import atomic_write

__all__ = ["draw_reliability", "reliability_png"]

COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189))
WIDTH, HEIGHT = 760, 600
LEFT, TOP, SIDE = 90, 50, 400  # the square plot's corner and side, in pixels
BARS_TOP, BARS_HEIGHT = TOP + SIDE + 30, 80

Series = Mapping[str, tuple[Sequence[float | None], Sequence[bool]]]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _xy(confidence: float, accuracy: float) -> tuple[float, float]:
    return LEFT + confidence * SIDE, TOP + (1 - accuracy) * SIDE


def _axes(draw: ImageDraw.ImageDraw, font: Font, title: str) -> None:
    draw.text((LEFT, 14), title, fill="black", font=_font(17))
    draw.rectangle((LEFT, TOP, LEFT + SIDE, TOP + SIDE), outline=(90, 90, 90))
    for tick in range(11):
        value = tick / 10
        x, y = _xy(value, value)
        draw.line((x, TOP + SIDE, x, TOP + SIDE + 4), fill=(90, 90, 90))
        draw.line((LEFT - 4, y, LEFT, y), fill=(90, 90, 90))
        if tick % 2 == 0:
            draw.text((x - 8, TOP + SIDE + 6), f"{value:.1f}", fill="black", font=font)
            draw.text((LEFT - 34, y - 7), f"{value:.1f}", fill="black", font=font)
        if 0 < tick < 10:
            draw.line((x, TOP, x, TOP + SIDE), fill=(235, 235, 235))
            draw.line((LEFT, y, LEFT + SIDE, y), fill=(235, 235, 235))
    for step in range(0, SIDE, 8):  # the diagonal, dashed: where a calibrated confidence lies
        a, b = step / SIDE, min(step + 4, SIDE) / SIDE
        draw.line((*_xy(a, a), *_xy(b, b)), fill=(120, 120, 120), width=1)
    draw.text((LEFT + SIDE // 2 - 40, TOP + SIDE + 20), "confidence", fill="black", font=font)
    draw.text((4, TOP + SIDE // 2 - 20), "share\nright", fill="black", font=font)


def reliability_png(series: Series, *, title: str = "Reliability", bins: int = 10) -> bytes:
    """The diagram of every series, as PNG bytes."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = _font(13)
    _axes(draw, font, title)
    tables = {name: reliability_table(conf, right, bins) for name, (conf, right) in series.items()}
    largest = max((b.count for table in tables.values() for b in table), default=1) or 1
    bar_width = SIDE / bins / max(len(tables), 1)
    for number, (name, table) in enumerate(tables.items()):
        colour = COLOURS[number % len(COLOURS)]
        points = [
            (_xy(b.mean_confidence, b.accuracy), b.count)
            for b in table
            if b.count and b.mean_confidence is not None and b.accuracy is not None
        ]
        if len(points) > 1:
            draw.line([xy for xy, _ in points], fill=colour, width=2)
        for (x, y), count in points:
            radius = 3 + 7 * (count / largest) ** 0.5
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour, outline="white")
        for index, b in enumerate(table):  # counts per bin, side by side under the plot
            height = BARS_HEIGHT * b.count / largest
            x0 = LEFT + index * SIDE / bins + number * bar_width
            draw.rectangle(
                (x0, BARS_TOP + BARS_HEIGHT - height, x0 + bar_width - 1, BARS_TOP + BARS_HEIGHT), fill=colour
            )
        confidences, correct = series[name]
        ece = expected_calibration_error(confidences, correct, bins)
        coverage = coverage_at_precision(confidences, correct, 0.99).coverage
        legend_y = TOP + 10 + number * 64
        draw.rectangle((LEFT + SIDE + 24, legend_y + 3, LEFT + SIDE + 36, legend_y + 15), fill=colour)
        lines = f"{name}\nECE {ece:.3f}\ncoverage at 99%: {coverage:.0%}"
        draw.multiline_text((LEFT + SIDE + 44, legend_y), lines, fill="black", font=font, spacing=3)
    draw.text((LEFT, BARS_TOP + BARS_HEIGHT + 4), "fields per bin", fill=(90, 90, 90), font=font)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def draw_reliability(series: Series, path: str | Path, *, title: str = "Reliability", bins: int = 10) -> None:
    """Write the diagram to `path` (atomically: never half a picture, never through a symlink)."""
    atomic_write(path, reliability_png(series, title=title, bins=bins))
