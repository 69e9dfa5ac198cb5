"""Predictions from inspection history (contract 7.4.2 (4) 故障预测): least-squares line fits.

* ``fit``: ordinary least squares y = a + b x with R²;
* ``days_until``: when a rising series (disk use in %, bytes) reaches a limit, from the fit over its
  history (None when it is not rising or there are fewer than ``min_points`` points);
* ``growth``: the slope per day and the value projected ``horizon_days`` ahead (database size);
* ``advice``: a capacity sentence for a prediction (zh/en), used by the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Fit:
    intercept: float
    slope: float
    r2: float
    n: int

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x


@dataclass(frozen=True)
class Prediction:
    subject: str
    current: float
    slope_per_day: float
    r2: float
    points: int
    days_left: float | None       # until the limit; None = not reached on the current trend
    reaches_at: datetime | None
    limit: float


def fit(points: list[tuple[float, float]]) -> Fit | None:
    """Least squares over (x, y); None for fewer than two distinct x."""
    n = len(points)
    if n < 2:
        return None
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in points)
    slope = sxy / sxx
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for _, y in points)
    ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in points)
    r2 = 1.0 - ss_res / ss_tot if ss_tot else 1.0
    return Fit(intercept, slope, r2, n)


def _days(series: list[tuple[datetime, float]]) -> list[tuple[float, float]]:
    t0 = series[0][0]
    return [((t - t0).total_seconds() / 86400.0, v) for t, v in series]


def _parse(series) -> list[tuple[datetime, float]]:
    out = []
    for t, v in series:
        out.append((datetime.fromisoformat(t.replace("Z", "+00:00")) if isinstance(t, str) else t, float(v)))
    return sorted(out)


def days_until(series, limit: float, subject: str = "", min_points: int = 3,
               now: datetime | None = None) -> Prediction | None:
    """Days from ``now`` (default: the last point) until the fitted line reaches ``limit``."""
    pts = _parse(series)
    if len(pts) < min_points:
        return None
    f = fit(_days(pts))
    if f is None:
        return None
    t0, (t_last, current) = pts[0][0], pts[-1]
    now = now or t_last
    x_now = (now - t0).total_seconds() / 86400.0
    days_left: float | None = None
    reaches: datetime | None = None
    if current >= limit:
        days_left, reaches = 0.0, now
    elif f.slope > 0:
        x_limit = (limit - f.intercept) / f.slope
        days_left = max(0.0, x_limit - x_now)
        reaches = now + timedelta(days=days_left)
    return Prediction(subject, current, f.slope, f.r2, f.n, days_left, reaches, limit)


def growth(series, horizon_days: float = 90.0, subject: str = "", min_points: int = 2) -> dict | None:
    pts = _parse(series)
    if len(pts) < min_points:
        return None
    f = fit(_days(pts))
    if f is None:
        return None
    x_last = _days(pts)[-1][0]
    return {"subject": subject, "current": pts[-1][1], "slope_per_day": f.slope, "r2": f.r2, "points": f.n,
            "projected": f.at(x_last + horizon_days), "horizon_days": horizon_days}


def advice(kind: str, p: Prediction | dict, lang: str = "zh") -> str:
    zh = lang == "zh"
    if kind == "disk":
        assert isinstance(p, Prediction)
        if p.days_left is None:
            return "使用量未上升，无需扩容。" if zh else "Use is not rising: no capacity action needed."
        if p.days_left < 30:
            return (f"按当前趋势约 {p.days_left:.0f} 天后写满：本月内清理或扩容。" if zh
                    else f"Full in about {p.days_left:.0f} days on the current trend: clean up or extend this month.")
        if p.days_left < 180:
            return (f"约 {p.days_left:.0f} 天后写满：下季度前安排扩容。" if zh
                    else f"Full in about {p.days_left:.0f} days: plan the extension before next quarter.")
        return (f"约 {p.days_left:.0f} 天后写满，容量充足。" if zh
                else f"Full in about {p.days_left:.0f} days: capacity is sufficient.")
    if kind == "db":
        assert isinstance(p, dict)
        per_month = p["slope_per_day"] * 30
        return (f"每月增长约 {_bytes(per_month)}，90 天后约 {_bytes(p['projected'])}。" if zh
                else f"Grows about {_bytes(per_month)} a month; about {_bytes(p['projected'])} in 90 days.")
    if kind == "cert":
        days = float(p if isinstance(p, (int, float)) else p.current)  # type: ignore[union-attr]
        if days <= 30:
            return f"{days:.0f} 天后到期：立即更换证书。" if zh else f"Expires in {days:.0f} days: renew now."
        return f"{days:.0f} 天后到期。" if zh else f"Expires in {days:.0f} days."
    return ""


def _bytes(n: float) -> str:
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{sign}{n:.0f} {unit}" if unit == "B" else f"{sign}{n:.1f} {unit}"
        n /= 1024
    return f"{sign}{n:.1f} TiB"
