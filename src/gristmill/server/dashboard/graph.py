"""Graphs laid out on the server for the dashboard's SVG drawings: a pipeline's DAG and an
artifact's lineage. Nodes go in columns by topological depth (the longest path from a node
with no inputs), edges become cubic curves. Plain data and arithmetic: no drawing library,
and nothing here ever sees markup (templates escape every label)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

NODE_WIDTH = 176
NODE_HEIGHT = 52
COLUMN_GAP = 64
ROW_GAP = 22
MARGIN = 12


@dataclass
class Node:
    """A box in the drawing: ``id`` (the thing it stands for), what it shows, its kind
    (``step``, ``artifact``) and its status (a CSS class), placed at ``x``, ``y``."""

    id: str
    label: str
    kind: str = "step"
    status: str = ""
    detail: str = ""
    href: str | None = None
    highlight: bool = False
    depth: int = 0
    x: float = 0.0
    y: float = 0.0
    width: float = NODE_WIDTH
    height: float = NODE_HEIGHT

    @property
    def short_label(self) -> str:
        """The label cut to what fits the box (the full one is the box's title)."""
        limit = 24
        return self.label if len(self.label) <= limit else self.label[: limit - 1] + "…"


@dataclass
class Edge:
    source: str
    target: str
    path: str = ""


@dataclass
class Layout:
    nodes: list[Node]
    edges: list[Edge]
    width: float
    height: float
    by_id: dict[str, Node] = field(default_factory=dict)


def depths(ids: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Each node's longest distance from a node without incoming edges. Edges naming unknown
    nodes are ignored; a cycle (which stored graphs never have) leaves its nodes at depth 0
    rather than looping."""
    known = set(ids)
    incoming: dict[str, list[str]] = {i: [] for i in ids}
    outgoing: dict[str, list[str]] = {i: [] for i in ids}
    for a, b in edges:
        if a in known and b in known and a != b:
            incoming[b].append(a)
            outgoing[a].append(b)
    depth = dict.fromkeys(ids, 0)
    remaining = {i: len(set(incoming[i])) for i in ids}
    ready = [i for i in ids if remaining[i] == 0]
    seen: set[tuple[str, str]] = set()
    while ready:
        node = ready.pop(0)
        for nxt in outgoing[node]:
            if (node, nxt) in seen:
                continue
            seen.add((node, nxt))
            depth[nxt] = max(depth[nxt], depth[node] + 1)
            remaining[nxt] -= 1
            if remaining[nxt] == 0:
                ready.append(nxt)
    return depth


def layout(nodes: Sequence[Node], edges: Iterable[tuple[str, str]]) -> Layout:
    """Place ``nodes`` left to right by depth, in the order given within a column, and route
    ``edges`` (source id, target id) between the boxes' sides."""
    edge_list = list(dict.fromkeys(edges))
    depth = depths([n.id for n in nodes], edge_list)
    columns: dict[int, list[Node]] = {}
    for node in nodes:
        node.depth = depth[node.id]
        columns.setdefault(node.depth, []).append(node)
    tallest = max((len(c) for c in columns.values()), default=0)
    full_height = tallest * NODE_HEIGHT + max(tallest - 1, 0) * ROW_GAP
    for column, members in columns.items():
        used = len(members) * NODE_HEIGHT + (len(members) - 1) * ROW_GAP
        top = MARGIN + (full_height - used) / 2  # each column centred on the tallest
        for row, node in enumerate(members):
            node.x = MARGIN + column * (NODE_WIDTH + COLUMN_GAP)
            node.y = top + row * (NODE_HEIGHT + ROW_GAP)
    by_id = {n.id: n for n in nodes}
    routed = []
    for a, b in edge_list:
        if a in by_id and b in by_id and a != b:
            routed.append(Edge(a, b, _curve(by_id[a], by_id[b])))
    width = MARGIN * 2 + (len(columns) * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP if columns else 0)
    height = MARGIN * 2 + full_height
    return Layout(list(nodes), routed, max(width, 0), max(height, 0), by_id)


def _curve(a: Node, b: Node) -> str:
    x1, y1 = a.x + a.width, a.y + a.height / 2
    x2, y2 = b.x, b.y + b.height / 2
    if x2 <= x1:  # same column or backwards (never for a DAG by depth): go around below
        x2, y2 = b.x + b.width / 2, b.y + b.height
        return (
            f"M{x1:.1f},{y1:.1f} C{x1 + 40:.1f},{y1:.1f} {x2:.1f},{y2 + 40:.1f} {x2:.1f},{y2:.1f}"
        )
    bend = (x2 - x1) / 2
    return (
        f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
    )
