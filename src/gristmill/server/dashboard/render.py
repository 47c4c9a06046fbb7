"""The dashboard's Jinja2 environment: templates from this package, autoescaping always on,
and the filters pages share (times, durations, numbers, values, Markdown). Everything shown
comes from the store, so it is escaped; the only markup built here is Markdown rendered with
raw HTML disabled and unsafe links refused (markdown-it-py), and it goes through
``markupsafe`` like the rest."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
# Images a visualization may carry, shown through a data: URL (never SVG: it can hold script).
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
# Setting names whose values are never shown, even when a component holds them in clear.
_SECRET_KEY = re.compile(r"pass|secret|token|key|credential|auth|private", re.IGNORECASE)
REDACTED = "••••••"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # every template, whatever its name ends with
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        ago=ago,
        duration=duration,
        number=number,
        value=value,
        markdown=markdown,
        short=short,
        redact=redact_config,
    )
    env.globals.update(image_src=image_src, static=static_url)
    return env


def static_url(name: str) -> str:
    from gristmill._version import __version__

    return f"/static/dashboard/{name}?v={__version__}"


def when(epoch: float | datetime | None) -> str:
    if epoch is None:
        return "-"
    if isinstance(epoch, datetime):
        moment = epoch.astimezone(timezone.utc)
    else:
        moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(epoch: float | datetime | None, now: float | None = None) -> str:
    import time

    if epoch is None:
        return "-"
    at = epoch.timestamp() if isinstance(epoch, datetime) else epoch
    seconds = max((now if now is not None else time.time()) - at, 0)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def number(found: Any) -> str:
    if isinstance(found, bool) or not isinstance(found, (int, float)):
        return value(found)
    if isinstance(found, int):
        return str(found)
    return format(found, ".6g")


def value(found: Any, limit: int = 300) -> str:
    """A stored value as short text: strings as they are, the rest as JSON."""
    if found is None:
        return "-"
    if isinstance(found, str):
        text = found
    elif isinstance(found, float):
        text = format(found, ".6g")
    else:
        try:
            text = json.dumps(found, default=str, ensure_ascii=False)
        except ValueError:
            text = repr(found)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short(text: str | None, size: int = 12) -> str:
    return (text or "")[:size]


def markdown(text: Any) -> Markup:
    """Markdown as HTML with raw HTML shown as text and links other than http(s), mailto
    and relative ones refused (markdown-it-py's js-default preset and link validation)."""

    return Markup(_markdown_renderer().render(str(text or "")))


@lru_cache(maxsize=1)
def _markdown_renderer() -> Any:
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("js-default", {"html": False, "linkify": False, "typographer": False})
    allowed = ("http://", "https://", "mailto:", "#", "/")
    default_validate = renderer.validateLink

    def validate(url: str) -> bool:
        lowered = url.strip().lower()
        relative = ":" not in lowered.split("/", 1)[0]
        return bool(default_validate(url)) and (relative or lowered.startswith(allowed))

    renderer.validateLink = validate  # type: ignore[method-assign]
    return renderer


def image_src(shown: dict[str, Any]) -> str | None:
    """A ``data:`` URL for an image visualization, or None when its type is not a raster
    image type or its data is not base64."""
    media_type = shown.get("media_type")
    data = shown.get("data")
    if media_type not in IMAGE_TYPES or not isinstance(data, str) or not _BASE64.match(data):
        return None
    try:
        base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return None
    return f"data:{media_type};base64,{''.join(data.split())}"


def redact_config(config: Any, key: str = "") -> Any:
    """Component settings with every value under a secret-looking key replaced (secret
    references such as ``{{secret.db.password}}`` name a secret, never its value, and stay)."""
    from gristmill.stacks.secrets import has_reference

    if isinstance(config, dict):
        return {k: redact_config(v, str(k)) for k, v in config.items()}
    if isinstance(config, list):
        return [redact_config(v, key) for v in config]
    if key and _SECRET_KEY.search(key) and config not in (None, ""):
        if isinstance(config, str) and has_reference(config):
            return config
        return REDACTED
    return config
