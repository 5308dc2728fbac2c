"""Flamegraphs from collapsed stacks: static SVG, differential SVG, plotly icicle, speedscope JSON.

Input everywhere is a collapsed-stack mapping (``"root;child;leaf" -> samples``), the
format ``py-spy record -f raw`` writes and ``profile_stacks`` stores. Everything here is
pure: no files, no JavaScript, so the SVGs survive nbconvert's ``<img>`` embedding.
"""

from __future__ import annotations

import html
import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.text import percent

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "FRAME_HEIGHT",
    "MIN_SHARE",
    "ROOT",
    "differential_svg",
    "flamegraph_svg",
    "format_collapsed",
    "icicle_figure",
    "parse_collapsed",
    "speedscope_json",
    "split_frame",
]

ROOT = "all"
MIN_SHARE = 0.001  # frames narrower than this share of all samples are not drawn
FRAME_HEIGHT = 16
_TOP = 44
_BOTTOM = 8
_PAD = 10
_FONT_SIZE = 12
_CHAR_WIDTH = 7.0  # approximate width of a 12 px Verdana glyph
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*)\)$")


@dataclass
class _Node:
    name: str
    total: int = 0
    self: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def parse_collapsed(text: str) -> dict[str, int]:
    """Collapsed stacks (``a;b;c 12`` per line) as a mapping; counts of repeated stacks add up."""
    stacks: dict[str, int] = {}
    for raw in text.splitlines():
        line = raw.rstrip()
        stack, _, count = line.rpartition(" ")
        # str.isdigit() also accepts "²" and "١"; and no profile has 10**18 samples.
        if not (count.isascii() and count.isdigit()) or len(count) > 18:
            continue
        stacks[stack] = stacks.get(stack, 0) + int(count)
    return stacks


def format_collapsed(stacks: Mapping[str, int]) -> str:
    """The collapsed-stack text of a mapping, one ``stack count`` line each, sorted by stack."""
    return "".join(f"{stack} {count}\n" for stack, count in sorted(stacks.items()) if count > 0)


def split_frame(frame: str) -> tuple[str, str]:
    """``("func", "path/file.py")`` from a canonical ``func (path/file.py)`` frame."""
    match = _FRAME.match(frame)
    return (match["name"], match["file"]) if match else (frame, "")


def flamegraph_svg(
    stacks: Mapping[str, int], *, title: str, width: int = 1200, min_share: float = MIN_SHARE
) -> str:
    """A static SVG flamegraph (root at the bottom) with a ``<title>`` tooltip per frame."""
    root = _tree(stacks)

    def fill(path: tuple[str, ...], node: _Node) -> tuple[str, str]:
        tip = f"{node.name} ({node.total:,} samples, {percent(_share(node.total, root.total), 2)})"
        return (_GREY if not path else _warm(node.name)), tip

    subtitle = f"{root.total:,} samples; width = share of samples, root at the bottom"
    return _render(root, fill, title=title, subtitle=subtitle, width=width, min_share=min_share)


def differential_svg(
    base: Mapping[str, int],
    cand: Mapping[str, int],
    *,
    title: str,
    width: int = 1200,
    min_share: float = MIN_SHARE,
) -> str:
    """A differential flamegraph: widths from ``cand``, red/blue by the change in normalised share."""
    cand_root, base_root = _tree(cand), _tree(base)
    deltas: dict[tuple[str, ...], float] = {}
    for path, node in _walk(cand_root):
        before = _lookup(base_root, path)
        deltas[path] = _share(node.total, cand_root.total) - _share(
            before.total if before else 0, base_root.total
        )
    scale = max((abs(d) for d in deltas.values()), default=0.0)

    def fill(path: tuple[str, ...], node: _Node) -> tuple[str, str]:
        delta = deltas[path]
        before = _lookup(base_root, path)
        tip = (
            f"{node.name}: {node.total:,} samples ({percent(_share(node.total, cand_root.total), 2)}), "
            f"was {before.total if before else 0:,} ({percent(_share(before.total if before else 0, base_root.total), 2)}); "
            f"{delta * 100:+.2f} pp"
        )
        return _diff_colour(delta, scale), tip

    vanished = sum(c for s, c in base.items() if c > 0 and s and cand.get(s, 0) <= 0)
    subtitle = (
        f"widths: candidate ({cand_root.total:,} samples); red grew, blue shrank in share "
        f"vs base ({base_root.total:,} samples); stacks only in base: {percent(_share(vanished, base_root.total), 2)}"
    )
    return _render(
        cand_root, fill, title=title, subtitle=subtitle, width=width, min_share=min_share
    )


def icicle_figure(
    stacks: Mapping[str, int], *, title: str, min_share: float = MIN_SHARE
) -> go.Figure:
    """An interactive plotly icicle (root on top) of the stack tree; values are total samples."""
    import plotly.graph_objects as go

    root = _tree(stacks)
    ids: list[str] = []
    labels: list[str] = []
    parents: list[str] = []
    values: list[int] = []
    shares: list[float] = []
    # Short ids (the walk's order), not the joined frames: a deep stack's path repeats every
    # frame above it, megabytes for a profile's few thousand nodes.
    known: dict[tuple[str, ...], str] = {}
    for path, node in _walk(root, min_total=min_share * root.total):
        known[path] = str(len(ids))
        ids.append(known[path])
        labels.append(node.name)
        parents.append(known[path[:-1]] if path else "")
        values.append(node.total)
        shares.append(_share(node.total, root.total))
    figure = go.Figure(
        go.Icicle(
            ids=ids,
            labels=labels,
            parents=parents,
            values=values,
            customdata=shares,
            branchvalues="total",
            tiling={"orientation": "v"},
            hovertemplate="%{label}<br>%{value} samples (%{customdata:.1%})<extra></extra>",
        )
    )
    figure.update_layout(title=title, margin={"t": 40, "l": 4, "r": 4, "b": 4})
    return figure


def speedscope_json(stacks: Mapping[str, int], *, name: str, rate_hz: float) -> dict[str, Any]:
    """A speedscope file ("sampled" profile): one weighted sample per stack, weights in seconds."""
    if rate_hz <= 0:
        raise ValueError(f"rate_hz must be positive, got {rate_hz}")
    index: dict[str, int] = {}
    frames: list[dict[str, Any]] = []
    samples: list[list[int]] = []
    weights: list[float] = []
    for stack, count in sorted(stacks.items()):
        if count <= 0 or not stack:
            continue
        row = []
        for frame in stack.split(";"):
            if frame not in index:
                index[frame] = len(frames)
                func, file = split_frame(frame)
                frames.append({"name": func, "file": file} if file else {"name": func})
            row.append(index[frame])
        samples.append(row)
        weights.append(count / rate_hz)
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "name": name,
        "exporter": "workbench",
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": [
            {
                "type": "sampled",
                "name": name,
                "unit": "seconds",
                "startValue": 0.0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            }
        ],
    }


# -- the tree ----------------------------------------------------------------------


def _tree(stacks: Mapping[str, int]) -> _Node:
    root = _Node(ROOT)
    for stack, count in stacks.items():
        if count <= 0 or not stack:
            continue
        root.total += count
        node = root
        for frame in stack.split(";"):
            node = node.children.setdefault(frame, _Node(frame))
            node.total += count
        node.self += count
    return root


def _walk(
    node: _Node, path: tuple[str, ...] = (), min_total: float = 0.0
) -> Iterator[tuple[tuple[str, ...], _Node]]:
    """Nodes depth-first, children in name order, skipping subtrees below ``min_total``."""
    yield path, node
    for name in sorted(node.children):
        child = node.children[name]
        if child.total >= min_total:
            yield from _walk(child, (*path, name), min_total)


def _lookup(root: _Node, path: tuple[str, ...]) -> _Node | None:
    node: _Node | None = root
    for name in path:
        node = node.children.get(name) if node else None
    return node


# -- drawing ---------------------------------------------------------------------

_GREY = "rgb(200,200,200)"


def _render(
    root: _Node,
    fill: Callable[[tuple[str, ...], _Node], tuple[str, str]],
    *,
    title: str,
    subtitle: str,
    width: int,
    min_share: float,
) -> str:
    min_total = min_share * root.total
    depth = max((len(p) for p, _ in _walk(root, min_total=min_total)), default=0) + 1
    height = _TOP + depth * FRAME_HEIGHT + _BOTTOM
    out = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Verdana, sans-serif" font-size="{_FONT_SIZE}">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="rgb(250,250,250)"/>',
        f'<text x="{width / 2:.1f}" y="20" text-anchor="middle" font-size="16">{_esc(title)}</text>',
        f'<text x="{width / 2:.1f}" y="36" text-anchor="middle" fill="rgb(90,90,90)">{_esc(subtitle)}</text>',
    ]
    if root.total == 0:
        out.append(f'<text x="{_PAD}" y="{_TOP + 12}">no samples</text>')
        out.append("</svg>")
        return "\n".join(out) + "\n"
    scale = (width - 2 * _PAD) / root.total
    starts: dict[tuple[str, ...], float] = {(): 0.0}
    for path, node in _walk(root, min_total=min_total):
        start = starts[path]
        offset = start
        for name in sorted(node.children):
            starts[(*path, name)] = offset
            offset += node.children[name].total
        x = _PAD + start * scale
        w = node.total * scale
        y = _TOP + (depth - 1 - len(path)) * FRAME_HEIGHT
        colour, tip = fill(path, node)
        label = _fit(node.name, w)
        out.append(
            f'<g class="frame"><title>{_esc(tip)}</title>'
            f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{FRAME_HEIGHT - 1}" '
            f'fill="{colour}" rx="2" ry="2"/>'
            + (f'<text x="{x + 3:.2f}" y="{y + 11.5:.1f}">{_esc(label)}</text>' if label else "")
            + "</g>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _fit(name: str, width: float) -> str:
    chars = int((width - 6) / _CHAR_WIDTH)
    if chars < 3:
        return ""
    return name if len(name) <= chars else name[: chars - 2] + ".."


def _esc(text: str) -> str:
    return html.escape(_CONTROL.sub("?", text), quote=True)


def _warm(name: str) -> str:
    """A stable warm colour per frame name (flamegraph.pl's "hot" palette)."""
    h = zlib.crc32(name.encode("utf-8", "replace"))
    return f"rgb({205 + h % 50},{(h >> 8) % 230},{(h >> 16) % 55})"


def _diff_colour(delta: float, scale: float) -> str:
    """White for no change; red for growth, blue for shrinkage, saturated by |delta| / scale."""
    if scale <= 0 or abs(delta) < 1e-12:
        return "rgb(245,245,245)"
    fade = round(245 - 175 * min(1.0, abs(delta) / scale))
    return f"rgb(255,{fade},{fade})" if delta > 0 else f"rgb({fade},{fade},255)"


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0
