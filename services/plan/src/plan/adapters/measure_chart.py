"""A small server-rendered SVG chart of one measure over an episode's sessions: the baseline,
each session's reading and the milestone targets that read the measure as dashed lines, so
the therapist sees at a glance how far the patient is from the next target.

Plan does not know a measure's full range (that is assessment's catalog), so the axis spans
the readings and the targets. The same look as assessment's chart (its colours and size).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT, PAD, LEFT = 420, 140, 22, 34


@dataclass(frozen=True)
class Target:
    label: str  # the milestone's label
    value: float


@dataclass(frozen=True)
class Series:
    score: str  # the score's key ("lefs", "nprs")
    points: Sequence[tuple[str, float]]  # (label, value), baseline first, then by session
    targets: Sequence[Target] = ()


def _axis(series: Series) -> tuple[float, float]:
    values = [v for _, v in series.points] + [t.value for t in series.targets]
    low, high = min(values), max(values)
    if low == high:
        return low - 1, high + 1
    margin = (high - low) * 0.1
    return low - margin, high + margin


def svg(series: Series) -> str:
    low, high = _axis(series)
    span = high - low

    def y(value: float) -> float:
        return PAD + (HEIGHT - 2 * PAD) * (1 - (value - low) / span)

    n = len(series.points)
    inner = WIDTH - LEFT - PAD
    xs = [LEFT + inner * (i / (n - 1) if n > 1 else 0.5) for i in range(n)]
    name = escape(series.score)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'role="img" aria-label="{name} over the episode" data-score="{name}">',
             f'<text x="{LEFT}" y="13" font-size="11">{name}</text>']
    for t in series.targets:
        ty = y(t.value)
        parts.append(f'<line class="target" x1="{LEFT}" x2="{WIDTH - PAD}" y1="{ty:.1f}" '
                     f'y2="{ty:.1f}" stroke="#a2441b" stroke-dasharray="4 3">'
                     f'<title>{escape(t.label)}: {t.value:g}</title></line>'
                     f'<text x="2" y="{ty + 4:.1f}" font-size="10" fill="#a2441b">'
                     f'{t.value:g}</text>')
    if n > 1:
        path = " ".join(f"{x:.1f},{y(v):.1f}" for x, (_, v) in zip(xs, series.points,
                                                                    strict=True))
        parts.append(f'<polyline points="{path}" fill="none" stroke="#0f6c5c" '
                     f'stroke-width="2"/>')
    for x, (label, value) in zip(xs, series.points, strict=True):
        parts.append(f'<circle class="point" cx="{x:.1f}" cy="{y(value):.1f}" r="3.5" '
                     f'fill="#0f6c5c"><title>{escape(label)}: {value:g}</title></circle>'
                     f'<text x="{x:.1f}" y="{HEIGHT - 4}" font-size="10" '
                     f'text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
