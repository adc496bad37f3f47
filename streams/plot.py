"""The message-log plot, drawn on the server as inline SVG (no chart library, nothing from a CDN):
published per minute and each consumer group's lag over the last hour (streams.throughput)."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from streams.throughput import WINDOW, Series

WIDTH, PANEL, TOP, LEFT, RIGHT, GAP = 640, 110, 18, 56, 12, 34
# Colour-blind-safe (Okabe-Ito), one per group in turn.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
RATE_COLOUR = "#0072B2"


def _number(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")


def _path(times: Sequence[float], values: Sequence[float | None], *, now: float, top: float, peak: float) -> str:
    """An SVG path through the points, broken where a value is missing."""
    width = WIDTH - LEFT - RIGHT
    parts, pen_down = [], False
    for t, v in zip(times, values, strict=True):
        if v is None:
            pen_down = False
            continue
        x = LEFT + width * (1 - (now - t) / WINDOW)
        y = top + PANEL - PANEL * (v / peak if peak else 0)
        parts.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        pen_down = True
    return " ".join(parts)


def _dot(path: str, colour: str) -> str:
    """A dot on a line's newest point, so a line of a few minutes shows on an hour-wide plot."""
    if not path:
        return ""
    x, y = path.rsplit(" ", 1)[-1][1:].split(",")
    return f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}"/>'


def _panel(title: str, top: float, peak: float) -> list[str]:
    right = WIDTH - RIGHT
    return [
        f'<text x="{LEFT}" y="{top - 5}" class="title">{escape(title)}</text>',
        f'<rect x="{LEFT}" y="{top}" width="{right - LEFT}" height="{PANEL}" fill="#fafafa" stroke="#ccc"/>',
        f'<text x="{LEFT - 4}" y="{top + 9}" text-anchor="end">{_number(peak)}</text>',
        f'<text x="{LEFT - 4}" y="{top + PANEL}" text-anchor="end">0</text>',
        *(f'<text x="{LEFT + (right - LEFT) * frac}" y="{top + PANEL + 12}" text-anchor="middle">{label}</text>'
          for frac, label in ((0, "-60 min"), (0.5, "-30 min"), (1, "now"))),
    ]  # fmt: skip


def plot_svg(series: Series, *, now: float, stream: str) -> SafeString:
    """Two panels, published per minute above and lag per group below, with a legend."""
    rates = [v for v in series.published_per_minute if v is not None]
    rate_peak = max(rates, default=0) or 1
    lags = [v for values in series.lag.values() for v in values if v is not None]
    lag_peak = max(lags, default=0) or 1
    lag_top = TOP + PANEL + GAP
    height = lag_top + PANEL + 18 + 14 * max(1, len(series.lag))
    published = _path(series.times, series.published_per_minute, now=now, top=TOP, peak=rate_peak)
    label = f"Stream {stream}: published per minute and consumer lag, last hour"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="throughput-plot" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(label)}" font-size="10" '
        'font-family="sans-serif">',
        f"<title>{escape(label)}</title>",
        "<style>.title{font-weight:bold}</style>",
        *_panel(f"Published per minute (latest: {_number(rates[-1]) if rates else 'none'})", TOP, rate_peak),
        f'<path class="published" d="{published}" fill="none" stroke="{RATE_COLOUR}" stroke-width="1.5"/>',
        _dot(published, RATE_COLOUR),
        *_panel("Consumer lag (entries not yet delivered)", lag_top, lag_peak),
    ]  # fmt: skip
    legend_y = lag_top + PANEL + 28
    for i, (group, values) in enumerate(sorted(series.lag.items())):
        colour = COLOURS[i % len(COLOURS)]
        path = _path(series.times, values, now=now, top=lag_top, peak=lag_peak)
        latest = next((v for v in reversed(values) if v is not None), None)
        out.append(f'<path class="lag" data-group="{escape(group)}" d="{path}" fill="none" stroke="{colour}" '
                   'stroke-width="1.5"/>')  # fmt: skip
        out.append(_dot(path, colour))
        y = legend_y + 14 * i
        out.append(f'<rect x="{LEFT}" y="{y - 8}" width="10" height="3" fill="{colour}"/>')
        out.append(
            f'<text x="{LEFT + 14}" y="{y - 4}">{escape(group)}: {"unknown" if latest is None else latest}</text>'
        )
    if not series.lag:
        out.append(f'<text x="{LEFT}" y="{legend_y - 4}">No consumer groups.</text>')
    if not series.times:
        out.append(f'<text x="{WIDTH / 2}" y="{TOP + PANEL / 2}" text-anchor="middle">No samples yet '
                   "(one per THROUGHPUT_SAMPLE_INTERVAL; two make a point)</text>")  # fmt: skip
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text in it is escaped above
