"""The evaluation's formulas against pytesmo and numpy, in memory (fast enough to
run per mutant): analytical intervals, anomalies, Julian dates, the bootstrap,
a sensor's paired statistics. End to end: ``tests/test_evaluate_validation.py``."""

import numpy as np
import pandas as pd
import pytest
from pytesmo.time_series.anomaly import calc_anomaly

from support import irregular_times, numpy_metrics, pytesmo_cis
from transforms.evaluation import metrics, series


def _stats(p, y):
    s = metrics.PairStats()
    for a, b in zip(p, y):
        s = s.add(float(a), float(b))
    return s


@pytest.mark.parametrize("n,level", [(3, 0.95), (4, 0.95), (7, 0.9), (60, 0.95), (500, 0.99)])
def test_analytical_intervals_equal_pytesmo(n, level):
    rng = np.random.default_rng(n)
    y = rng.uniform(0.05, 0.5, n)
    p = y + rng.normal(0.02, 0.05, n)
    got = _stats(p, y).metrics(level)
    for key, expected in pytesmo_cis(p, y, level).items():
        if np.isfinite(expected):
            assert got[key] == pytest.approx(expected, rel=1e-9, abs=1e-12), key
        else:
            assert got[key] is None, key
    assert set(metrics.CI_KEYS) <= set(got) and "r_ci_lower" not in _stats(p, y).metrics()


def test_intervals_are_none_where_undefined():
    assert all(_stats([0.1, 0.2], [0.1, 0.3]).metrics(0.95)[k] is None for k in metrics.CI_KEYS)
    flat = _stats([0.2] * 5, [0.1, 0.2, 0.3, 0.2, 0.25]).metrics(0.95)
    assert flat["r"] is None and flat["r_ci_lower"] is None and flat["r_ci_upper"] is None
    assert flat["bias_ci_lower"] is not None and flat["ubrmse_ci_upper"] is not None
    perfect = _stats([0.1, 0.2, 0.3, 0.5], [0.1, 0.2, 0.3, 0.5]).metrics(0.95)
    assert perfect["r_ci_lower"] == perfect["r_ci_upper"] == pytest.approx(1.0)
    three = _stats([0.1, 0.3, 0.2], [0.1, 0.2, 0.4]).metrics(0.95)
    assert (three["r_ci_lower"], three["r_ci_upper"]) == (-1.0, 1.0)
    for level in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            _stats([0.1, 0.2, 0.3], [0.1, 0.2, 0.4]).metrics(level)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_anomalies_equal_pytesmo_calc_anomaly(seed):
    rng = np.random.default_rng(seed)
    t = irregular_times(rng, 80)
    x = rng.uniform(0.05, 0.5, len(t))
    index = pd.to_datetime(t, unit="ms")
    for window in (35, 5, 1):
        expected = calc_anomaly(pd.Series(x, index=index), window_size=window).to_numpy()
        got = series.anomalies(x, series.julian_dates(t), window)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_moving_average_includes_both_ends_of_the_window():
    jd = np.array([0.0, 17.5, 35.0, 35.0 + 1 / 86400])
    x = np.array([1.0, 2.0, 4.0, 8.0])
    # each point: the values within 17.5 days either side, both ends included
    np.testing.assert_allclose(series.moving_average(x, jd, 35), [1.5, 7 / 3, 14 / 3, 6.0])
    assert series.moving_average([3.0], np.array([5.0]), 35).tolist() == [3.0]


def test_julian_dates_equal_pytesmo_for_leap_days_and_year_ends():
    from cadati.jd_date import julday

    when = pd.to_datetime(["2016-02-29 23:59:59.900", "2016-03-01", "2019-12-31 12:00",
                           "2020-01-01 00:00:01", "2000-02-29 06:30:15", "1999-01-01 23:00",
                           "2018-07-04 13:47:59.999", "2021-11-30 00:00:59",
                           "1969-12-31 23:00:00", "1965-03-01 00:00:01"], format="ISO8601")
    ms = when.as_unit("ms").asi8.astype(float)
    ms[6] += 0.5  # 13:47:59.9995 is still second 59 (times are cut, not rounded)
    expected = julday(when.month.to_numpy(), when.day.to_numpy(), when.year.to_numpy(),
                      when.hour.to_numpy(), when.minute.to_numpy(), when.second.to_numpy())
    np.testing.assert_array_equal(series.julian_dates(ms), expected)


def test_bootstrap_interval_is_numpy_resampling_with_the_seed():
    values = np.random.default_rng(3).uniform(0, 1, 25)
    rng = np.random.default_rng(7)
    drawn = [np.median(values[rng.integers(0, 25, 25)]) for _ in range(200)]
    expected = (np.quantile(drawn, 0.05), np.quantile(drawn, 0.95))
    assert metrics.bootstrap_interval(values, np.median, 200, 0.9, 7) == pytest.approx(expected)
    assert metrics.bootstrap_interval([0.5], np.mean, 200, 0.9, 7) == (None, None)
    assert metrics.bootstrap_interval(values, np.mean, 0, 0.9, 7) == (None, None)
    rows = [{"sensor_id": f"s{i}", "n": 10, "r": v, "ubrmse": v / 10, "r_anom": None,
             "ubrmse_anom": None, "rmse": v, "bias": 0.0} for i, v in enumerate(values)]
    summary = metrics.summarise_sensors(rows[::-1], 10, 0.9, 200, 7)
    in_sensor_order = [r["r"] for r in sorted(rows, key=lambda r: r["sensor_id"])]
    lower, upper = metrics.bootstrap_interval(in_sensor_order, np.mean, 200, 0.9, 7)
    assert (summary["r_mean_ci_lower"], summary["r_mean_ci_upper"]) == (lower, upper)
    assert summary["r_anom_mean"] is None and summary["sensors_without_anomaly"] == 25
    # a sensor with no anomaly r (all anomalies 0) is out of the anomaly ubRMSE average too
    rows[0].update(r_anom=0.5, ubrmse_anom=0.02)
    rows[1].update(r_anom=None, ubrmse_anom=0.0)
    short = metrics.summarise_sensors(rows, 10)
    assert (short["ubrmse_anom_mean"], short["ubrmse_anom_sensors"]) == (0.02, 1)
    assert "r_mean_ci_lower" not in metrics.summarise_sensors(rows, 10)


def test_sensor_skill_pairs_only_points_with_both_predictors():
    rng = np.random.default_rng(4)
    t = irregular_times(rng, 30)
    y = rng.uniform(0.1, 0.4, 30)
    model = y + rng.normal(0, 0.02, 30)
    smap = y + rng.normal(0, 0.08, 30)
    points = [(t[i], y[i], {"model": model[i], **({"smap": smap[i]} if i % 4 else {})})
              for i in range(30)]
    skill = series.sensor_skill(("test", "A__B__C"), reversed(points))
    both = [i for i in range(30) if i % 4]
    p = skill["paired"]["smap"]
    assert (skill["split"], skill["sensor_id"], p["n"]) == ("test", "A__B__C", len(both))
    ref, base = numpy_metrics(model[both], y[both]), numpy_metrics(smap[both], y[both])
    assert (p["r_reference"], p["ubrmse_reference"]) == pytest.approx((ref["r"], ref["ubrmse"]))
    assert (p["r_baseline"], p["ubrmse_baseline"]) == pytest.approx((base["r"], base["ubrmse"]))
    index = pd.to_datetime(t, unit="ms")
    ap = calc_anomaly(pd.Series(model, index=index), window_size=35).to_numpy()
    ay = calc_anomaly(pd.Series(y, index=index), window_size=35).to_numpy()
    anomaly = skill["anomaly"]["model"]
    assert anomaly["n_anom"] == 30
    assert anomaly["r_anom"] == pytest.approx(np.corrcoef(ap, ay)[0, 1], abs=1e-12)
    assert anomaly["ubrmse_anom"] == pytest.approx(np.std(ap - ay), abs=1e-12)
    assert skill["anomaly"]["smap"]["n_anom"] == len(both)
    one = series.sensor_skill(("test", "x"), [(t[0], y[0], {"model": 0.2})])
    assert one["anomaly"]["model"] == {"n_anom": 1, "r_anom": None, "ubrmse_anom": None}
    assert series.sensor_skill(("test", "x"), [(t[0], y[0], {"smap": 0.2})])["paired"] == {}


def test_moving_average_window_test_is_the_difference_as_pytesmo_computes_it():
    """The window is what pytesmo's ``fabs(jd[j] - jd[i]) <= limit`` says,
    checked against that rule applied to every pair, on dates with steps of
    exactly and nearly half the window."""
    rng = np.random.default_rng(11)
    for _ in range(20):
        base = 2457000 + rng.uniform(0, 1)
        steps = rng.choice([17.5, 17.5, 0.25, 3.0, 17.5 + 1e-9, 17.5 - 1e-9], 40)
        jd = np.sort(base + np.concatenate([[0.0], np.cumsum(steps)]))
        x = rng.uniform(0, 1, len(jd))
        expected = [x[np.abs(jd - jd[i]) <= 17.5].mean() for i in range(len(jd))]
        np.testing.assert_allclose(series.moving_average(x, jd, 35), expected, rtol=0, atol=1e-12)


def test_sensor_skill_with_its_window_two_points_and_equal_times():
    rng = np.random.default_rng(9)
    t = irregular_times(rng, 40)
    y = rng.uniform(0.1, 0.4, 40)
    p = y + rng.normal(0, 0.03, 40)
    index = pd.to_datetime(t, unit="ms")
    skill = series.sensor_skill(("test", "s"), [(t[i], y[i], {"model": p[i]}) for i in range(40)],
                                window_days=5)
    ap = calc_anomaly(pd.Series(p, index=index), window_size=5).to_numpy()
    ay = calc_anomaly(pd.Series(y, index=index), window_size=5).to_numpy()
    assert skill["anomaly"]["model"]["r_anom"] == pytest.approx(np.corrcoef(ap, ay)[0, 1], abs=1e-12)
    assert skill["anomaly"]["model"]["ubrmse_anom"] == pytest.approx(np.std(ap - ay), abs=1e-12)
    # two points within the window: anomalies +-half their difference, r = 1
    two = series.sensor_skill(("test", "s"), [(t[0], 0.2, {"model": 0.25}), (t[1], 0.3, {"model": 0.4})])
    assert two["anomaly"]["model"] == {"n_anom": 2, "r_anom": pytest.approx(1.0),
                                       "ubrmse_anom": pytest.approx(0.025)}
    # points at the same time (and label) are ordered by time alone
    same = [(t[0], 0.2, {"model": 0.1}), (t[0], 0.2, {"model": 0.3}), (t[2], 0.25, {"model": 0.2})]
    assert series.sensor_skill(("test", "s"), same)["anomaly"]["model"]["n_anom"] == 3
