"""Images (Pillow) and text artifacts (``gristmill.types``): open files people can view.

Images are PNG, which keeps every pixel; a mode PNG cannot hold (CMYK, F, I, LAB, ...) is
written as TIFF instead, still lossless; an image neither keeps goes to the next materializer.
Text is written as UTF-8 in a file named for what it holds (``page.html``, ``document.md``,
``table.csv``, ``text.txt``). Loading decodes pixels or text and runs nothing: the type comes
back from a fixed table of the four text types, never from a class a stored name points at.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path
from typing import Any

from gristmill.artifacts.materializers.base import (
    MAX_VISUALIZATION_BYTES,
    CannotMaterialize,
    Materializer,
    Visualization,
    check_library_stamp,
    clip,
    module_loaded,
    write_library_stamp,
)
from gristmill.errors import MaterializerError
from gristmill.types import CSVString, HTMLString, MarkdownString, TextString

PNG_FILE, TIFF_FILE = "image.png", "image.tiff"
# Modes PNG stores exactly (``I`` and ``F`` would be cut to 16-bit integers: TIFF keeps them).
PNG_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16"})
THUMBNAIL_SIDES = (256, 128, 64)  # tried in turn until the thumbnail fits the budget
# Room left for the other keys of a visualization and JSON's escaping of the text.
_VISUALIZATION_ROOM = MAX_VISUALIZATION_BYTES - 1024


class ImageMaterializer(Materializer):
    """``PIL.Image.Image`` as ``image.png`` (or ``image.tiff`` for modes PNG cannot hold);
    loaded fully into memory (the file is closed again) as a ``PIL.Image.Image``."""

    name = "pillow"
    priority = 20

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        image = module_loaded("PIL.Image")
        return image is not None and issubclass(data_type, image.Image)

    def save(self, value: Any, directory: Path) -> None:
        for file_name, image_format in ((PNG_FILE, "PNG"), (TIFF_FILE, "TIFF")):
            if image_format == "PNG" and value.mode not in PNG_MODES:
                continue
            path = directory / file_name
            if _writes_faithfully(value, path, image_format):
                write_library_stamp(directory, "pillow", format=image_format.lower())
                return
            path.unlink(missing_ok=True)
        raise CannotMaterialize  # neither format keeps this mode: the next materializer tries

    def load(self, directory: Path, data_type: str) -> Any:
        from PIL import Image

        check_library_stamp(directory)
        path = directory / PNG_FILE
        if not path.is_file():
            path = directory / TIFF_FILE
        with Image.open(path) as image:
            image.load()
            # A plain Image (info kept), not the file's reader class, whatever the file was.
            return image.copy()

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        width, height = value.size
        meta = {"width": width, "height": height, "mode": value.mode}
        return f"Image {value.mode} {width}x{height}", meta

    def visualize(self, value: Any) -> Visualization | None:
        width, height = value.size
        for side in THUMBNAIL_SIDES:
            thumbnail = _viewable(value)
            thumbnail.thumbnail((side, side))
            buffer = io.BytesIO()
            thumbnail.save(buffer, format="PNG", optimize=True)
            data = base64.b64encode(buffer.getvalue()).decode("ascii")
            if len(data) <= _VISUALIZATION_ROOM:
                return {
                    "kind": "image",
                    "media_type": "image/png",
                    "data": data,
                    "width": thumbnail.width,
                    "height": thumbnail.height,
                    "title": f"{width}x{height} {value.mode}",
                }
        return None


def _writes_faithfully(image: Any, path: Path, image_format: str) -> bool:
    """Write ``image`` to ``path``; whether the file reads back in the same mode and size
    (Pillow converts some modes silently, e.g. ``I`` to 16 bits in PNG)."""
    from PIL import Image

    try:
        options = {"compression": "tiff_adobe_deflate"} if image_format == "TIFF" else {}
        image.save(path, format=image_format, **options)
        with Image.open(path) as written:
            return bool(written.mode == image.mode and written.size == image.size)
    except (OSError, KeyError, ValueError):  # Pillow's ways of saying "not in this format"
        return False


def _viewable(image: Any) -> Any:
    """A copy of ``image`` in a mode every browser shows as PNG."""
    if image.mode in ("1", "L", "LA", "P", "RGB", "RGBA"):
        return image.copy()
    if image.mode in ("I", "I;16", "F"):
        low, high = image.getextrema()
        scale = 255.0 / (high - low) if high != low else 1.0
        return image.point(lambda v: (v - low) * scale).convert("L")
    return image.convert("RGBA" if "A" in image.getbands() else "RGB")


# The text types and their files: the only classes a text artifact is rebuilt as.
_TEXT_FILES: dict[type[str], tuple[str, str]] = {
    HTMLString: ("page.html", "html"),
    MarkdownString: ("document.md", "markdown"),
    CSVString: ("table.csv", "csv"),
    TextString: ("text.txt", "text"),
}
_BY_FILE = {file_name: kind for kind, (file_name, _) in _TEXT_FILES.items()}
CSV_ROWS = 20  # rows (after the header) a CSV visualization shows
CSV_CELL_CHARS = 100
CSV_COLUMNS = 50


class TextMaterializer(Materializer):
    """``HTMLString``, ``MarkdownString``, ``CSVString`` and ``TextString`` (and subclasses) as
    a UTF-8 file with the matching extension; loaded as the type the file name says.

    Ranked above the JSON materializer, which would otherwise store them as plain ``str``."""

    name = "text"
    priority = 30

    @classmethod
    def can_handle(cls, data_type: type) -> bool:
        return issubclass(data_type, tuple(_TEXT_FILES))

    def save(self, value: Any, directory: Path) -> None:
        file_name, _ = _TEXT_FILES[_text_kind(type(value))]
        # Bytes, not write_text: no newline translation; lone surrogates survive.
        (directory / file_name).write_bytes(str(value).encode("utf-8", "surrogatepass"))

    def load(self, directory: Path, data_type: str) -> Any:
        for file_name, kind in _BY_FILE.items():
            path = directory / file_name
            if path.is_file():
                return kind(path.read_bytes().decode("utf-8", "surrogatepass"))
        raise MaterializerError(
            f"no text file ({', '.join(_BY_FILE)}) in {directory}: it was not written by the "
            "text materializer"
        )

    def describe(self, value: Any) -> tuple[str, dict[str, Any]]:
        _, label = _TEXT_FILES[_text_kind(type(value))]
        meta = {"format": label, "characters": len(value), "lines": value.count("\n") + 1}
        return clip(value), meta

    def visualize(self, value: Any) -> Visualization | None:
        kind = _text_kind(type(value))
        if kind is CSVString:
            return _csv_table(value)
        return _bounded_text(_TEXT_FILES[kind][1], value)


def _text_kind(data_type: type) -> type[str]:
    for kind in _TEXT_FILES:
        if issubclass(data_type, kind):
            return kind
    raise CannotMaterialize


def _bounded_text(kind: str, text: str) -> Visualization:
    """``{"kind": kind, "text": ...}`` with as much of the text as fits the budget once
    JSON-escaped (a cut marks itself with ``truncated``)."""
    shown = text[:_VISUALIZATION_ROOM]
    while len(json.dumps(shown)) > _VISUALIZATION_ROOM:
        shown = shown[: len(shown) * 3 // 4]
    visualization: Visualization = {"kind": kind, "text": shown}
    if len(shown) < len(text):
        visualization["truncated"] = True
    return visualization


def _csv_table(text: str) -> Visualization:
    # Only a bounded prefix is parsed, so a huge CSV costs what a small one does.
    lines = io.StringIO(text[: 64 * 1024])
    rows: list[list[str]] = []
    try:
        for row in csv.reader(lines):
            rows.append([clip(cell, CSV_CELL_CHARS) for cell in row[:CSV_COLUMNS]])
            if len(rows) > CSV_ROWS:
                break
    except csv.Error:
        pass  # a row cut by the prefix, or not CSV at all: show what parsed
    if not rows:
        return _bounded_text("text", text)
    header, body = rows[0], rows[1:]
    table: Visualization = {"kind": "table", "title": "head", "columns": header, "rows": body}
    while body and len(json.dumps(table)) > _VISUALIZATION_ROOM:
        del body[len(body) // 2 :]  # wide or escaped cells: fewer rows
    return table
