"""Predictions: least-squares fits, days until a disk fills, growth, advice."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hospops import predict

T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)


def test_fit_recovers_a_line_exactly():
    f = predict.fit([(x, 3 + 2 * x) for x in range(10)])
    assert f.slope == pytest.approx(2) and f.intercept == pytest.approx(3) and f.r2 == pytest.approx(1)


def test_fit_with_noise_and_degenerate_inputs():
    f = predict.fit([(0, 1), (1, 3), (2, 2), (3, 4)])
    assert f.slope == pytest.approx(0.8) and f.intercept == pytest.approx(1.3) and 0 < f.r2 < 1
    assert predict.fit([(1, 1)]) is None
    assert predict.fit([(1, 1), (1, 2)]) is None


def test_days_until_a_disk_fills():
    # 60 % rising 1 point a day, sampled daily for 10 days: now 69 %, full (100 %) in 31 days
    series = [((T0 + timedelta(days=d)).isoformat(), 60 + d) for d in range(10)]
    p = predict.days_until(series, 100, subject="db:/var/lib/postgresql")
    assert p.days_left == pytest.approx(31)
    assert p.reaches_at == T0 + timedelta(days=40)
    assert p.current == 69 and p.slope_per_day == pytest.approx(1)


def test_days_until_from_a_later_now_and_when_already_full():
    series = [(T0 + timedelta(hours=12 * i), 50 + i) for i in range(6)]     # 1 point per 12 h = 2/day
    p = predict.days_until(series, 80, now=T0 + timedelta(days=3))
    assert p.days_left == pytest.approx(12)
    full = predict.days_until([(T0, 99), (T0 + timedelta(days=1), 100), (T0 + timedelta(days=2), 100)], 100)
    assert full.days_left == 0


@pytest.mark.parametrize("values", [[70, 70, 70], [80, 75, 70], [70, 71]])
def test_no_prediction_when_flat_falling_or_too_few_points(values):
    series = [(T0 + timedelta(days=i), v) for i, v in enumerate(values)]
    p = predict.days_until(series, 100)
    assert p is None or p.days_left is None


def test_growth_and_advice():
    series = [(T0 + timedelta(days=d), 1_000_000_000 + d * 10_000_000) for d in range(30)]
    g = predict.growth(series, horizon_days=90)
    assert g["slope_per_day"] == pytest.approx(10_000_000)
    assert g["projected"] == pytest.approx(1_000_000_000 + (29 + 90) * 10_000_000)
    assert "每月增长" in predict.advice("db", g, "zh") and "a month" in predict.advice("db", g, "en")
    p = predict.days_until([(T0 + timedelta(days=d), 80 + d) for d in range(5)], 100)
    assert "本月内" in predict.advice("disk", p, "zh")
    assert "renew now" in predict.advice("cert", 10.0, "en")
