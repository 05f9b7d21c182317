"""evaluate as a validation report, end to end: every interval and anomaly figure
of its outputs against pytesmo, the bootstrap, the paired comparison and the
breakdowns against in-memory numpy, the temporal hold-out. The oracles never
import the code they check: pytesmo (the field's reference) and numpy on the
rows as written. The formulas alone: ``tests/test_intervals.py``."""

import csv
import datetime
import json

import numpy as np
import pandas as pd
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from pytesmo.metrics import pearson_r, ubrmsd
from pytesmo.time_series.anomaly import calc_anomaly

from pipelines import evaluate
from support import DAY, irregular_times as _irregular_times, pytesmo_cis as _pytesmo_cis
from transforms import runtime
from transforms.evaluation import metrics


def _write(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _predictions(tmp_path, rng, sensors=10):
    """Sensors of 3 networks with 2-60 labelled rows over a year and a half,
    land cover and input ages; SMAP noisier than the model."""
    rows = []
    for s in range(sensors):
        sid = f"NET{s % 3}__ST{s}__X"
        n = int(rng.integers(2, 61)) if s else 2
        t = _irregular_times(rng, max(n, 8))[:n] if n >= 8 else 1.5e12 + DAY * np.arange(n)
        for k in range(n):
            y = 0.25 + 0.1 * np.sin(t[k] / (40 * DAY)) + float(rng.normal(0, 0.02))
            rows.append({"sensor_id": sid, "timestamp": repr(float(t[k])),
                         "prediction": y + float(rng.normal(0, 0.03)),
                         "label": y if k % 9 != 4 else "",
                         "smap_sm": int(np.clip(round((y + rng.normal(0, 0.1)) * 255), 0, 255)),
                         "gldas_sm": int(np.clip(round((y + rng.normal(0.05, 0.08)) * 255), 0, 255)),
                         "center_lat": 1.0, "center_long": 2.0, "shard": f"s{s}", "index": k,
                         "land_cover": [40, 30, 111][s % 3],
                         "sentinel_1_time_millis_diff": float(rng.uniform(-9, 9) * DAY),
                         "sentinel_2_time_millis_diff": float(rng.uniform(-2, 2) * DAY)})
    _write(tmp_path / "pred-00000-of-00001.csv", rows)
    return rows


def _values(r):
    return {"model": float(r["prediction"]), "smap": r["smap_sm"] / 255, "gldas": r["gldas_sm"] / 255}


def _run(tmp_path, *flags):
    out = tmp_path / "eval"
    report = evaluate.run(["--predictions", str(tmp_path / "pred-*.csv"), "--output_dir", str(out),
                           "--split_by", "none", "--min_samples_per_sensor", "5", *flags],
                          test_pipeline=TestPipeline(runner=runtime.LOCAL_RUNNER))
    with open(out / "per_sensor.csv") as f:
        per_sensor = list(csv.DictReader(f))
    with open(out / "per_group.csv") as f:
        per_group = list(csv.DictReader(f))
    return report, per_sensor, per_group, out


def _number(text):
    return None if text == "" else float(text)


def test_every_interval_and_anomaly_figure_equals_pytesmo(tmp_path):
    rows = _predictions(tmp_path, np.random.default_rng(5))
    report, per_sensor, _, out = _run(tmp_path)
    labelled = [r for r in rows if r["label"] != ""]
    checked = 0
    for got in per_sensor:
        mine = sorted((r for r in labelled if r["sensor_id"] == got["sensor_id"]),
                      key=lambda r: float(r["timestamp"]))
        p = [_values(r)[got["predictor"]] for r in mine]
        y = [r["label"] for r in mine]
        assert int(got["n"]) == len(mine)
        if len(mine) >= 3:
            for key, expected in _pytesmo_cis(p, y).items():
                if np.isfinite(expected):
                    assert _number(got[key]) == pytest.approx(expected, rel=1e-9, abs=1e-12), key
                    checked += 1
        else:
            assert all(got[k] == "" for k in metrics.CI_KEYS)
        index = pd.to_datetime([float(r["timestamp"]) for r in mine], unit="ms")
        if len(mine) >= 2:
            ap = calc_anomaly(pd.Series(p, index=index), window_size=35)
            ay = calc_anomaly(pd.Series(y, index=index), window_size=35)
            r_anom = float(pearson_r(ap.to_numpy(), ay.to_numpy()))
            if np.isfinite(r_anom) and np.std(ap) > 1e-12 and np.std(ay) > 1e-12:
                assert _number(got["r_anom"]) == pytest.approx(r_anom, abs=1e-9)
            assert _number(got["ubrmse_anom"]) == pytest.approx(
                float(ubrmsd(ap.to_numpy(), ay.to_numpy())), abs=1e-9)
    assert checked > 100
    # pooled figures and their intervals in metrics.json, over all labelled rows
    summary = json.loads((out / "metrics.json").read_text())
    for predictor in ("model", "smap", "gldas"):
        p = [_values(r)[predictor] for r in labelled]
        y = [r["label"] for r in labelled]
        for key, expected in _pytesmo_cis(p, y).items():
            assert summary["pooled"]["all"][predictor][key] == pytest.approx(expected, rel=1e-9)
        for network, stats in summary["per_network"]["all"].items():
            mine = [r for r in labelled if r["sensor_id"].startswith(network + "__")]
            expected = _pytesmo_cis([_values(r)[predictor] for r in mine], [r["label"] for r in mine])
            assert stats[predictor]["r_ci_lower"] == pytest.approx(expected["r_ci_lower"], rel=1e-9)
    assert summary["ci_level"] == 0.95
    # every row is counted once: evaluated, or why not
    assert summary["rows"] == {"evaluated": len(labelled), "no_label": len(rows) - len(labelled),
                               "no_prediction": 0, "no_split": 0}
    assert f"Rows read: {len(labelled)} evaluated, {len(rows) - len(labelled)} no label" in (
        out / "metrics.md").read_text()


def _per_sensor_oracle(rows, predictor, metric, min_samples=5):
    """Per-sensor r or ubRMSE by numpy, in sensor order, for sensors with enough pairs."""
    labelled = [r for r in rows if r["label"] != ""]
    out = []
    for sid in sorted({r["sensor_id"] for r in labelled}):
        mine = [r for r in labelled if r["sensor_id"] == sid]
        if len(mine) < min_samples:
            continue
        p = np.array([_values(r)[predictor] for r in mine])
        y = np.array([r["label"] for r in mine])
        out.append(np.corrcoef(p, y)[0, 1] if metric == "r" else np.std(p - y))
    return np.array(out)


def _bootstrap(values, statistic, samples, level, seed):
    rng = np.random.default_rng(seed)
    drawn = [statistic(values[rng.integers(0, len(values), len(values))]) for _ in range(samples)]
    return np.quantile(drawn, (1 - level) / 2), np.quantile(drawn, 1 - (1 - level) / 2)


def test_bootstrap_of_per_sensor_averages_and_the_paired_comparison(tmp_path):
    rows = _predictions(tmp_path, np.random.default_rng(6), sensors=14)
    report, _, _, out = _run(tmp_path, "--bootstrap_samples", "300", "--bootstrap_seed", "4",
                             "--ci_level", "0.9")
    summary = report["per_sensor_summary"]["all"]["model"]
    r = _per_sensor_oracle(rows, "model", "r")
    assert summary["r_mean"] == pytest.approx(r.mean(), abs=1e-12)
    # the same draws as numpy's generator makes them, one resample at a time
    lower, upper = _bootstrap(r, np.mean, 300, 0.9, 4)
    assert summary["r_mean_ci_lower"] == pytest.approx(lower, abs=1e-12)
    assert summary["r_mean_ci_upper"] == pytest.approx(upper, abs=1e-12)
    lower, upper = _bootstrap(r, np.median, 300, 0.9, 4)
    assert (summary["r_median_ci_lower"], summary["r_median_ci_upper"]) == pytest.approx((lower, upper))
    # paired: model minus SMAP on the same pairs, per sensor
    paired = report["paired"]["all"]["smap"]
    d_r = r - _per_sensor_oracle(rows, "smap", "r")
    d_u = _per_sensor_oracle(rows, "model", "ubrmse") - _per_sensor_oracle(rows, "smap", "ubrmse")
    assert paired["r_sensors"] == len(d_r) and paired["r_diff_mean"] == pytest.approx(d_r.mean())
    assert paired["share_r_better"] == pytest.approx(np.mean(d_r > 0))
    assert paired["share_ubrmse_better"] == pytest.approx(np.mean(d_u < 0))
    lower, upper = _bootstrap(d_u, np.mean, 300, 0.9, 4)
    assert (paired["ubrmse_diff_ci_lower"], paired["ubrmse_diff_ci_upper"]) == pytest.approx((lower, upper))
    assert paired["ubrmse_better_significant"] == bool(upper < 0)
    text = (out / "metrics.md").read_text()
    assert "Model vs SMAP" in text and "at the 90% level" in text
    assert f"{summary['r_mean']:.3f} [{summary['r_mean_ci_lower']:.3f}, " in text
    # the same rows in another order give the same intervals
    shuffled = list(rows)
    np.random.default_rng(0).shuffle(shuffled)
    _write(tmp_path / "pred-00000-of-00001.csv", shuffled)
    again, _, _, _ = _run(tmp_path, "--bootstrap_samples", "300", "--bootstrap_seed", "4",
                          "--ci_level", "0.9")
    assert again["per_sensor_summary"]["all"]["model"]["r_mean_ci_lower"] == pytest.approx(
        summary["r_mean_ci_lower"], abs=1e-12)  # the sums' order moves the last bits only


def test_breakdowns_equal_numpy_per_group(tmp_path):
    rows = _predictions(tmp_path, np.random.default_rng(7))
    _, _, per_group, out = _run(tmp_path)
    labelled = [r for r in rows if r["label"] != ""]

    def month(r):
        return datetime.datetime.fromtimestamp(float(r["timestamp"]) / 1000, datetime.timezone.utc).month

    def age(ms):
        days = abs(ms) / DAY
        return "<= 1 day" if days <= 1 else "1-3 days" if days <= 3 else "3-7 days" if days <= 7 else "> 7 days"

    groups = {
        "network": lambda r: r["sensor_id"].split("__")[0],
        "land_cover": lambda r: {40: "Cropland", 30: "Herbaceous vegetation",
                                 111: "Closed forest, evergreen needle leaf"}[r["land_cover"]],
        "sentinel_1_age": lambda r: age(r["sentinel_1_time_millis_diff"]),
        "sentinel_2_age": lambda r: age(r["sentinel_2_time_millis_diff"]),
        "month": lambda r: f"{month(r):02d}",
        "season": lambda r: ["DJF", "DJF", "MAM", "MAM", "MAM", "JJA", "JJA", "JJA", "SON", "SON",
                             "SON", "DJF"][month(r) - 1],
    }
    seen = set()
    for got in per_group:
        if got["predictor"] != "model":
            continue
        mine = [r for r in labelled if groups[got["breakdown"]](r) == got["group"]]
        p = np.array([float(r["prediction"]) for r in mine])
        y = np.array([r["label"] for r in mine])
        assert int(got["n"]) == len(mine)
        assert float(got["ubrmse"]) == pytest.approx(np.std(p - y), abs=1e-12)
        if len(mine) > 3:
            assert float(got["r"]) == pytest.approx(np.corrcoef(p, y)[0, 1], abs=1e-12)
            assert float(got["r_ci_lower"]) == pytest.approx(_pytesmo_cis(p, y)["r_ci_lower"], rel=1e-9)
        seen.add(got["breakdown"])
    assert seen == set(groups)
    for breakdown in groups:
        assert (out / f"breakdown_{breakdown}.png").stat().st_size > 1000
    # every labelled row is in exactly one group of each breakdown
    for breakdown in groups:
        assert sum(int(g["n"]) for g in per_group
                   if g["breakdown"] == breakdown and g["predictor"] == "model") == len(labelled)


def test_temporal_hold_out_splits_by_year(tmp_path):
    rows = _predictions(tmp_path, np.random.default_rng(8))
    out = tmp_path / "eval"
    report = evaluate.run(["--predictions", str(tmp_path / "pred-*.csv"), "--output_dir", str(out),
                           "--split_by", "time", "--test_years", "2018", "--validation_years",
                           "2017", "--bootstrap_samples", "0"],
                          test_pipeline=TestPipeline(runner=runtime.LOCAL_RUNNER))
    labelled = [r for r in rows if r["label"] != ""]
    year = {r["timestamp"]: datetime.datetime.fromtimestamp(float(r["timestamp"]) / 1000,
                                                            datetime.timezone.utc).year
            for r in labelled}
    for split, years in (("test", {2018}), ("validation", {2017}), ("train", {2015, 2016, 2019})):
        n = sum(1 for r in labelled if year[r["timestamp"]] in years)
        got = report["pooled"].get(split, {}).get("model", {}).get("n", 0)
        assert got == n, split
    assert {y for y in year.values()} >= {2017, 2018}
    with pytest.raises(runtime.UsageError, match="--test_years"):
        evaluate.run(["--predictions", str(tmp_path / "pred-*.csv"), "--output_dir", str(out),
                      "--split_by", "time"],
                     test_pipeline=TestPipeline(runner=runtime.LOCAL_RUNNER))
