"""Text artifact types: strings that say what they hold, so a step's output is stored as a file
with the right extension and shown rendered (HTML sandboxed, Markdown, a CSV table).

Each is a plain ``str`` subclass with no behaviour of its own; importing this module imports
nothing else.
"""

from __future__ import annotations

__all__ = ["CSVString", "HTMLString", "MarkdownString", "TextString"]


class TextString(str):
    """Plain text, stored as ``text.txt``."""

    __slots__ = ()


class HTMLString(str):
    """An HTML document or fragment, stored as ``page.html``; shown sandboxed (never run)."""

    __slots__ = ()


class MarkdownString(str):
    """Markdown, stored as ``document.md`` and shown rendered."""

    __slots__ = ()


class CSVString(str):
    """Comma-separated values, stored as ``table.csv`` and shown as a table of its first rows."""

    __slots__ = ()
