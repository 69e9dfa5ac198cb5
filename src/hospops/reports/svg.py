"""Small inline SVG line charts (no plotting dependency): series, a least-squares fit, a limit line."""

from __future__ import annotations

import html
from datetime import datetime

from hospops import predict

COLOURS = ["#1f6fb2", "#d9822b", "#2e9e5b", "#b83a3a", "#7a4fb5", "#5b6770"]


def line_chart(series: dict[str, list[tuple[datetime, float]]], *, title: str, unit: str = "",
               limit: float | None = None, limit_label: str = "", fit_lines: bool = True,
               width: int = 680, height: int = 220, y_min: float | None = None, y_max: float | None = None) -> str:
    pts = [p for s in series.values() for p in s]
    if not pts:
        return ""
    left, right, top, bottom = 64, 160, 28, 34
    pw, ph = width - left - right, height - top - bottom
    t0 = min(t for t, _ in pts).timestamp()
    t1 = max(t for t, _ in pts).timestamp()
    if t1 == t0:
        t1 = t0 + 86400
    values = [v for _, v in pts] + ([limit] if limit is not None else [])
    lo = min(values) if y_min is None else y_min
    hi = max(values) if y_max is None else y_max
    if hi == lo:
        hi = lo + 1
    pad = (hi - lo) * 0.05
    lo, hi = (lo - pad if y_min is None else lo), (hi + pad if y_max is None else hi)

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * pw

    def y(v: float) -> float:
        return top + ph - (v - lo) / (hi - lo) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
           f'<text x="{left}" y="16" class="ct" font-size="11" font-weight="bold" fill="#123b63">{html.escape(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#c8cdd2"/>']
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eef0f2"/>')
        out.append(f'<text x="{left - 4}" y="{y(v) + 4:.1f}" class="ax" font-size="9" fill="#555" text-anchor="end">{_fmt(v)}{unit}</text>')
    for frac, anchor in ((0, "start"), (0.5, "middle"), (1, "end")):
        t = t0 + (t1 - t0) * frac
        label = datetime.fromtimestamp(t).strftime("%m-%d")
        out.append(f'<text x="{x(t):.1f}" y="{top + ph + 16}" class="ax" font-size="9" fill="#555" text-anchor="{anchor}">{label}</text>')
    if limit is not None and lo <= limit <= hi:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(limit):.1f}" y2="{y(limit):.1f}" stroke="#b83a3a" '
                   f'stroke-dasharray="6 3"/><text x="{left + pw - 2}" y="{y(limit) - 4:.1f}" class="ax lim" font-size="9" fill="#b83a3a" '
                   f'text-anchor="end">{html.escape(limit_label)}</text>')
    for i, (name, s) in enumerate(sorted(series.items())):
        colour = COLOURS[i % len(COLOURS)]
        s = sorted(s)
        path = " ".join(f"{x(t.timestamp()):.1f},{y(v):.1f}" for t, v in s)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for t, v in s[-40:]:
            out.append(f'<circle cx="{x(t.timestamp()):.1f}" cy="{y(v):.1f}" r="2.2" fill="{colour}"/>')
        if fit_lines and len(s) >= 3:
            f = predict.fit([((t.timestamp() - t0) / 86400.0, v) for t, v in s])
            if f is not None:
                xa, xb = (s[0][0].timestamp() - t0) / 86400, (s[-1][0].timestamp() - t0) / 86400
                out.append(f'<line x1="{x(t0 + xa * 86400):.1f}" y1="{y(f.at(xa)):.1f}" x2="{x(t0 + xb * 86400):.1f}" '
                           f'y2="{y(f.at(xb)):.1f}" stroke="{colour}" stroke-width="1" stroke-dasharray="3 3"/>')
        ly = top + 12 + i * 16
        out.append(f'<rect x="{left + pw + 10}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{left + pw + 24}" y="{ly + 1}" class="lg" font-size="9" fill="#333">{html.escape(name[:26])}</text>')
    out.append("</svg>")
    return "".join(out)


def _fmt(v: float) -> str:
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.1f}G"
    if a >= 1e6:
        return f"{v / 1e6:.1f}M"
    if a >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}" if a >= 10 else f"{v:.1f}"
