"""Line charts of metric series for the dashboard, computed on the server as SVG coordinates:
one chart per metric, one line per run, axes with round tick values. Numbers in, numbers
out; the template draws them (no charting library, nothing sent to a CDN)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WIDTH = 520
HEIGHT = 240
LEFT = 64
RIGHT = 16
TOP = 16
BOTTOM = 36
PALETTE_SIZE = 8  # CSS classes series-0 … series-7


@dataclass
class Line:
    label: str
    css: str
    points: str  # "x,y x,y …" for <polyline points=…>
    dots: list[tuple[float, float, str]]  # each point, with its value as a tooltip


@dataclass
class Tick:
    at: float
    label: str


@dataclass
class Chart:
    title: str
    lines: list[Line]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values (1, 2, 2.5 or 5 times a power of ten apart) covering
    ``low``..``high``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high == low:
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks and ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def format_number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".4g")


def line_chart(title: str, series: Mapping[str, Sequence[tuple[float, float]]]) -> Chart | None:
    """A chart of ``series`` (label → (x, y) points); None when no series has a finite
    point. Non-finite values (NaN, inf) are left out of the lines."""
    clean = {
        label: [(float(x), float(y)) for x, y in points if math.isfinite(x) and math.isfinite(y)]
        for label, points in series.items()
    }
    clean = {label: points for label, points in clean.items() if points}
    if not clean:
        return None
    xs = [x for points in clean.values() for x, _ in points]
    ys = [y for points in clean.values() for _, y in points]
    x_values = nice_ticks(min(xs), max(xs)) if min(xs) != max(xs) else [min(xs)]
    y_values = nice_ticks(min(ys), max(ys))
    x_low, x_high = (x_values[0], x_values[-1]) if len(x_values) > 1 else (xs[0] - 1, xs[0] + 1)
    y_low, y_high = y_values[0], y_values[-1]
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x_low) / (x_high - x_low) * plot_w

    def sy(y: float) -> float:
        return TOP + (1 - (y - y_low) / (y_high - y_low)) * plot_h

    lines = []
    for index, (label, points) in enumerate(clean.items()):
        placed = [
            (sx(x), sy(y), f"{label}: step {format_number(x)} = {format_number(y)}")
            for x, y in points
        ]
        lines.append(
            Line(
                label=label,
                css=f"series-{index % PALETTE_SIZE}",
                points=" ".join(f"{x:.1f},{y:.1f}" for x, y, _ in placed),
                dots=[(round(x, 1), round(y, 1), tip) for x, y, tip in placed],
            )
        )
    return Chart(
        title=title,
        lines=lines,
        x_ticks=[Tick(round(sx(v), 1), format_number(v)) for v in x_values],
        y_ticks=[Tick(round(sy(v), 1), format_number(v)) for v in y_values],
    )
