"""Turning whatever the caller gave us into RGB page images, safely.

Accepted: a path, bytes, a PIL image or a numpy array (H x W, H x W x 3 RGB, H x W x 4 RGBA,
uint8) holding PNG, JPEG, TIFF (every frame is a page), BMP, WebP, GIF (first frame) or PDF
(every page rendered at `ImageLimits.pdf_dpi`). EXIF orientation is applied.

Every failure is a typed InputError subclass with a hint, never a PIL traceback (the classes live in
chatocr/errors.py, the one exception tree, and are importable from here too):
UnsupportedInputError, CorruptImageError, EncryptedInputError, EmptyImageError, ImageTooLargeError,
TooManyPagesError.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import stat
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from chatocr.errors import (
    IMAGE_FORMATS,
    CorruptImageError,
    EmptyImageError,
    EncryptedInputError,
    ImageTooLargeError,
    InputError,
    MissingDependencyError,
    TooManyPagesError,
    UnsupportedInputError,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from chatocr.ocr.types import OCRDocument

__all__ = [
    "CorruptImageError",
    "EmptyImageError",
    "EncryptedInputError",
    "ImageLimits",
    "ImageTooLargeError",
    "LoadedInput",
    "Source",
    "TooManyPagesError",
    "UnsupportedInputError",
    "describe_source",
    "load_input",
    "source_digest",
]

# What `OCREngine.read` accepts. An OCRDocument is passed through untouched.
Source = Union[str, "os.PathLike[str]", bytes, Image.Image, "npt.NDArray[Any]", "OCRDocument"]

FORMATS = IMAGE_FORMATS
_PIL_FORMATS = ("PNG", "JPEG", "MPO", "TIFF", "BMP", "WEBP", "GIF")
# Leading bytes of the formats we read: such a file that PIL cannot open is corrupt, not unsupported.
_MAGIC = (b"\x89PNG", b"\xff\xd8", b"II*\x00", b"MM\x00*", b"BM", b"GIF8", b"%PDF")
# pdfium is not thread-safe; the pipeline reads documents from several worker threads.
_PDF_LOCK = threading.Lock()


# pdfium's load error does not say reliably why (its last-error code is process-wide and stale), so
# the PDF's own trailer and page tree say it: an /Encrypt entry, or a page tree counting 0 pages.
_PDF_ENCRYPTED = re.compile(rb"/Encrypt\b")
_PDF_NO_PAGES = re.compile(rb"/Type\s*/Pages\b[^>]*?/Count\s+0\b|/Count\s+0\b[^>]*?/Type\s*/Pages\b")


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Safety limits and rendering settings for inputs.

    max_pixels: per page; the decompression-bomb guard (PIL refuses above 2 x 89.5 MP regardless).
    max_pages: PDF pages or TIFF frames.
    max_bytes: size of the input file or bytes.
    pdf_dpi: PDF rendering resolution; 200 keeps 8-10 pt text legible to PP-OCR models.
    """

    max_pixels: int = 50_000_000
    max_pages: int = 50
    max_bytes: int = 200 * 1024 * 1024
    pdf_dpi: int = 200


@dataclass(slots=True)
class LoadedInput:
    pages: list[Image.Image]
    source: str
    sha256: str | None
    warnings: list[str] = field(default_factory=list)


def describe_source(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, bytes):
        return f"<{len(source)} bytes>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.width}x{source.height}>"
    shape = getattr(source, "shape", None)
    if shape is not None:
        return f"<array {'x'.join(str(n) for n in shape)}>"
    return f"<{type(source).__name__}>"


def _read_path(path: str | os.PathLike[str], limits: ImageLimits) -> bytes:
    p = Path(path)
    try:
        # O_NONBLOCK: a FIFO must not block the open waiting for a writer; fstat then refuses it.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise UnsupportedInputError(f"{p} is a directory, not a file.")
            if not stat.S_ISREG(info.st_mode):
                raise UnsupportedInputError(
                    f"{p} is not a regular file (a pipe or a device?).", hint="Give the path of an image or PDF file."
                )
            if info.st_size > limits.max_bytes:
                raise ImageTooLargeError(f"{p} is {info.st_size} bytes, over the limit of {limits.max_bytes}.")
            return handle.read()
    except IsADirectoryError:
        raise UnsupportedInputError(f"{p} is a directory, not a file.") from None
    except FileNotFoundError:
        raise InputError(f"No such file: {p}", hint="Check the path.") from None
    except PermissionError:
        raise InputError(f"Cannot read {p}: permission denied.", hint="Check the file's permissions.") from None
    except OSError as error:
        raise InputError(f"Cannot read {p}: {error.strerror or error}.") from None


def _array_digest(array: Any) -> str:
    h = hashlib.sha256(f"array:{array.dtype}:{array.shape}:".encode())
    h.update(memoryview(array.tobytes()))
    return h.hexdigest()


def source_digest(source: Source, limits: ImageLimits | None = None) -> str | None:
    """sha256 of the input's content (file bytes, raw bytes, or pixels); None for an OCRDocument."""
    if isinstance(source, (str, os.PathLike)):
        return hashlib.sha256(_read_path(source, limits or ImageLimits())).hexdigest()
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    if isinstance(source, Image.Image):
        h = hashlib.sha256(f"pil:{source.mode}:{source.size}:".encode())
        h.update(source.tobytes())
        return h.hexdigest()
    if hasattr(source, "shape") and hasattr(source, "tobytes"):
        return _array_digest(source)
    return None


def load_input(source: Source, limits: ImageLimits | None = None) -> LoadedInput:
    """Decode `source` into RGB pages, applying every limit. Raises InputError subclasses."""
    limits = limits or ImageLimits()
    name = describe_source(source)
    if isinstance(source, (str, os.PathLike)):
        data = _read_path(source, limits)
        return _from_bytes(data, name, limits)
    if isinstance(source, bytes):
        if len(source) > limits.max_bytes:
            raise ImageTooLargeError(f"The input is {len(source)} bytes, over the limit of {limits.max_bytes}.")
        return _from_bytes(source, name, limits)
    if isinstance(source, Image.Image):
        digest = source_digest(source)
        return _finish([_page(source, name, limits)], name, digest)
    if hasattr(source, "shape") and hasattr(source, "dtype"):
        image = _image_from_array(source, name)
        return _finish([_page(image, name, limits)], name, _array_digest(source))
    raise UnsupportedInputError(
        f"Cannot read a {type(source).__name__}: give a path, bytes, a PIL image or a numpy array."
    )


def _image_from_array(array: Any, name: str) -> Image.Image:
    import numpy as np

    if 0 in array.shape:
        raise EmptyImageError(f"The array {name} has no pixels.")
    if array.dtype != np.uint8:
        raise UnsupportedInputError(
            f"The array {name} has dtype {array.dtype}; chatocr reads uint8 pixels.",
            hint="Convert it first, e.g. (array * 255).clip(0, 255).astype('uint8').",
        )
    if array.ndim == 2:
        return Image.fromarray(array, mode="L")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(array), mode="RGB" if array.shape[2] == 3 else "RGBA")
    raise UnsupportedInputError(
        f"The array {name} has shape {array.shape}; expected H x W, H x W x 3 (RGB) or H x W x 4 (RGBA)."
    )


def _from_bytes(data: bytes, name: str, limits: ImageLimits) -> LoadedInput:
    if not data:
        raise EmptyImageError(f"{name} is empty (0 bytes).")
    digest = hashlib.sha256(data).hexdigest()
    if data.startswith(b"%PDF"):
        return _finish(_pdf_pages(data, name, limits), name, digest)
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"{name} is a decompression bomb: {error}") from None
    except UnidentifiedImageError:
        if data.startswith(_MAGIC) or data[8:12] == b"WEBP":
            raise CorruptImageError(f"{name} looks like an image but cannot be decoded.") from None
        raise UnsupportedInputError(f"{name} is not an image chatocr reads ({FORMATS}).") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as error:
        raise CorruptImageError(f"{name} cannot be decoded: {error}") from None
    if image.format not in _PIL_FORMATS:
        raise UnsupportedInputError(f"{name} is a {image.format} image; chatocr reads {FORMATS}.")
    frames = getattr(image, "n_frames", 1) if image.format == "TIFF" else 1
    if frames > limits.max_pages:
        raise TooManyPagesError(f"{name} has {frames} pages, over the limit of {limits.max_pages}.")
    pages = [_page(frame, name, limits) for frame in _frames(image, frames, name)]
    return _finish(pages, name, digest)


def _frames(image: Image.Image, count: int, name: str) -> Iterator[Image.Image]:
    if count == 1:
        yield image
        return
    try:
        for frame in ImageSequence.Iterator(image):
            yield frame.copy()
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as error:
        raise CorruptImageError(f"{name}: a page cannot be decoded: {error}") from None


def _page(image: Image.Image, name: str, limits: ImageLimits) -> Image.Image:
    width, height = image.size
    if width == 0 or height == 0:
        raise EmptyImageError(f"{name} has no pixels ({width}x{height}).")
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"{name} is {width}x{height} = {width * height} pixels, over the limit of {limits.max_pixels}."
        )
    try:
        image.load()
        # exif_transpose only reads the Orientation tag; a mangled EXIF block raises here too.
        image = ImageOps.exif_transpose(image)
        return _to_rgb(image)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError) as error:
        raise CorruptImageError(f"{name} cannot be decoded: {error}") from None


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit and float scans: stretch to 8 bits instead of clipping everything to white.
        import numpy as np

        array: np.ndarray[Any, Any] = np.asarray(image, dtype=np.float64)
        top = float(array.max()) or 1.0
        image = Image.fromarray((array * (255.0 / top)).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent backgrounds go white: black text on transparent must not become black on black.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _pdf_pages(data: bytes, name: str, limits: ImageLimits) -> list[Image.Image]:
    try:
        import pypdfium2 as pdfium
    except ImportError:
        raise MissingDependencyError("Reading PDF files", "pdf", package="pypdfium2") from None
    with _PDF_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as error:
            if _PDF_ENCRYPTED.search(data):
                raise EncryptedInputError(f"{name} is a password-protected (encrypted) PDF.") from None
            if _PDF_NO_PAGES.search(data):
                raise EmptyImageError(
                    f"{name} is a PDF with no pages.",
                    hint="Check that the right file was given: this PDF has nothing to read.",
                ) from None
            raise CorruptImageError(f"{name} is not a readable PDF: {error}") from None
        try:
            count = len(pdf)
            if count == 0:
                raise EmptyImageError(f"{name} is a PDF with no pages.")
            if count > limits.max_pages:
                raise TooManyPagesError(f"{name} has {count} pages, over the limit of {limits.max_pages}.")
            pages = []
            for index in range(count):
                page = pdf[index]
                try:
                    width, height = page.get_size()  # points (1/72 inch)
                    scale = limits.pdf_dpi / 72
                    if width * height * scale * scale > limits.max_pixels:
                        # A poster-sized page is legitimate, unlike a bomb: render it smaller.
                        scale = math.sqrt(limits.max_pixels / (width * height)) * 0.999
                    pages.append(page.render(scale=scale).to_pil().convert("RGB"))
                finally:
                    page.close()
            return pages
        except pdfium.PdfiumError as error:
            raise CorruptImageError(f"{name}: a PDF page cannot be rendered: {error}") from None
        finally:
            pdf.close()


def _is_blank(image: Image.Image) -> bool:
    extrema = image.getextrema()
    return all(low == high for low, high in extrema)  # type: ignore[misc]


def _finish(pages: list[Image.Image], name: str, digest: str | None) -> LoadedInput:
    blank = [index for index, page in enumerate(pages) if _is_blank(page)]
    if len(blank) == len(pages):
        raise EmptyImageError(f"{name} is blank (every pixel the same colour): there is no text to read.")
    warnings = [f"page {index + 1} is blank" for index in blank]
    return LoadedInput(pages, name, digest, warnings)
