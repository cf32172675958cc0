"""A small server-rendered SVG chart of one score over an episode's evaluations, with the
band of no important change around the baseline (baseline ± the MCID, or the MDC where it
is larger): a point outside the band on the good side is a change the patient feels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT, PAD = 360, 120, 24


@dataclass(frozen=True)
class Series:
    score: str
    low: float  # the score's range, for the axis
    high: float
    points: Sequence[tuple[str, float]]  # (label, value), oldest first
    band: float | None  # the threshold around the baseline


def svg(series: Series) -> str:
    span = (series.high - series.low) or 1.0

    def y(value: float) -> float:
        return PAD + (HEIGHT - 2 * PAD) * (1 - (value - series.low) / span)

    n = len(series.points)
    xs = [PAD + (WIDTH - 2 * PAD) * (i / (n - 1) if n > 1 else 0.5) for i in range(n)]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'role="img" aria-label="{escape(series.score)} over the episode" '
             f'data-score="{escape(series.score)}">']
    if series.band is not None and series.points:
        base = series.points[0][1]
        top, bottom = y(min(series.high, base + series.band)), y(max(series.low,
                                                                    base - series.band))
        parts.append(f'<rect class="mcid-band" x="{PAD}" y="{top:.1f}" width="{WIDTH - 2 * PAD}" '
                     f'height="{bottom - top:.1f}" fill="#e7f4f0"><title>baseline ± '
                     f'{series.band:g}: no important change</title></rect>')
    parts.append(f'<text x="{PAD}" y="14" font-size="11">{escape(series.score)} '
                 f'({series.low:g}–{series.high:g})</text>')
    if n > 1:
        path = " ".join(f"{x:.1f},{y(v):.1f}" for x, (_, v) in zip(xs, series.points, strict=True))
        parts.append(f'<polyline points="{path}" fill="none" stroke="#0f6c5c" stroke-width="2"/>')
    for x, (label, value) in zip(xs, series.points, strict=True):
        parts.append(f'<circle class="point" cx="{x:.1f}" cy="{y(value):.1f}" r="3.5" '
                     f'fill="#0f6c5c"><title>{escape(label)}: {value:g}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)
