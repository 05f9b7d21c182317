"""Rules checked through the pipelines as a user runs them, on data built here
by hand (not by the generator), with values at the rules' boundaries."""

import csv
import datetime as dt
import json
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from apache_beam.testing.test_pipeline import TestPipeline

from pipelines import combine_ismn_data, evaluate
from support import numpy_metrics
from transforms.dataset import example_proto, tfrecord_io
from transforms import runtime

FLOAT32_STEP_MS = 131072  # the spacing of float32 near 1.5e12


def _example_times(offsets, start_k=11_444_091, gap_steps=20):
    """For each offset d: an example time t (whole seconds of a float32 ms
    timestamp) with t + d on a whole minute (ISMN readings are HH:MM), the
    examples at least 40 minutes apart."""
    out, k = [], start_k
    for d in offsets:
        while True:
            ms = k * FLOAT32_STEP_MS
            assert float(np.float32(ms)) == ms
            t = ms // 1000
            k += 1
            if (t + d) % 60 == 0:
                out.append((ms, t))
                k += gap_steps
                break
    return out


def _ceop_line(t_s, value):
    day = dt.datetime.fromtimestamp(t_s, dt.timezone.utc)
    d, hm = day.strftime("%Y/%m/%d"), day.strftime("%H:%M")
    return (f"{d} {hm} {d} {hm} SCAN SCAN Edge#1 34.25000 -105.42000 1905.00 0.0508 0.0508 "
            f"{value:.4f} G M")


def _window_case(tmp_path, offsets):
    """A shard with one unlabelled example per offset and an ISMN zip with one
    reading at example time + offset for each."""
    times = _example_times(offsets)
    readings = sorted((t + d, round(0.1 + 0.01 * i, 4)) for i, ((_, t), d) in
                      enumerate(zip(times, offsets)))
    text = "\r\n".join(_ceop_line(t, v) for t, v in readings) + "\r\n"
    ismn_zip = tmp_path / "ISMN.zip"
    with zipfile.ZipFile(ismn_zip, "w") as z:
        z.writestr("SCAN/Edge#1/SCAN_SCAN_Edge#1_sm_0.050800_0.050800_Hydraprobe_"
                   "20150101_20220101.stm", text)
    shards = tmp_path / "in"
    shards.mkdir()
    records = [example_proto.encode_example({
        "sensor_id": ("bytes", [b"SCAN__Edge_1__Hydraprobe"]),
        "timestamp": ("float", [float(ms)])}) for ms, _ in times]
    tfrecord_io.write_shard(str(shards / "data-00000-of-00001.tfrecord.gz"), records)
    value_at = dict(readings)
    return shards / "*.gz", ismn_zip, [value_at[t + d] for (_, t), d in zip(times, offsets)]


@pytest.mark.parametrize("tolerance_minutes,offsets", [
    (None, [-181, -180, -179, 0, 179, 180, 181]),
    (1, [-61, -60, -59, 59, 60, 61]),
])
def test_time_window_is_inclusive_at_both_ends(tmp_path, tolerance_minutes, offsets):
    glob, ismn_zip, values = _window_case(tmp_path, offsets)
    out = tmp_path / "out"
    argv = ["--input_data_path", str(glob), "--ismn_data_path", str(ismn_zip),
            "--output_dir", str(out)]
    if tolerance_minutes is not None:
        argv += ["--time_tolerance_minutes", str(tolerance_minutes)]
    summary = combine_ismn_data.run(argv, test_pipeline=TestPipeline(runner=runtime.LOCAL_RUNNER))
    limit = 60 * (tolerance_minutes or 3)
    inside = [abs(d) <= limit for d in offsets]
    written = [tf.train.Example.FromString(r) for r in
               tfrecord_io.read_shard(str(out / "data-00000-of-00001.tfrecord.gz"))]
    labels = [list(ex.features.feature["sm_0_5"].float_list.value) for ex in written]
    assert labels == [[pytest.approx(np.float32(v), abs=0)] for v, ok in zip(values, inside) if ok]
    with open(out / "failures.jsonl") as f:
        failed = sorted(json.loads(line)["index"] for line in f)
    assert failed == [i for i, ok in enumerate(inside) if not ok]
    assert summary["lookup_failures"] == inside.count(False) and summary["value_failures"] == 0
    # the released algorithm, re-stated independently, agrees example by example
    from released_reference import released_merge

    shard = str(tmp_path / "in" / "data-00000-of-00001.tfrecord.gz")
    counts = released_merge([shard], str(ismn_zip), str(tmp_path / "released"),
                            time_tolerance_minutes=tolerance_minutes or 3)
    assert (counts.success, counts.lookup_failures, counts.value_failures) == (
        inside.count(True), inside.count(False), 0)
    theirs = [tf.train.Example.FromString(r) for r in tfrecord_io.read_shard(
        str(tmp_path / "released" / "data-00000-of-00001.tfrecord.gz"))]
    assert theirs == written


# ---------------------------------------------------------------- evaluate

def _rows(rng, sensors):
    """Rows for ``sensors``: {sensor_id: number of labelled rows}."""
    rows = []
    for sid, n in sensors.items():
        for k in range(n):
            y = float(rng.uniform(0.05, 0.5))
            rows.append({"sensor_id": sid, "timestamp": 1.5e12 + 3.6e6 * k,
                         "prediction": y + float(rng.normal(0, 0.05)), "label": y,
                         "smap_sm": int(rng.integers(0, 256)), "gldas_sm": int(rng.integers(0, 256))})
    return rows


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _evaluate(argv):
    return evaluate.run(argv, test_pipeline=TestPipeline(runner=runtime.LOCAL_RUNNER))


def test_min_samples_per_sensor_keeps_a_sensor_with_exactly_the_minimum(tmp_path):
    rows = _rows(np.random.default_rng(0), {"N__A__X": 10, "N__B__X": 9, "N__C__X": 11})
    _write_csv(tmp_path / "p.csv", rows)
    report = _evaluate(["--predictions", str(tmp_path / "p.csv"), "--output_dir",
                        str(tmp_path / "ev"), "--split_by", "none",
                        "--min_samples_per_sensor", "10"])
    summary = report["per_sensor_summary"]["all"]["model"]
    assert summary["sensors_used"] == 2 and summary["sensors_excluded_min_samples"] == 1
    used = [numpy_metrics([r["prediction"] for r in rows if r["sensor_id"] == s],
                           [r["label"] for r in rows if r["sensor_id"] == s])
            for s in ("N__A__X", "N__C__X")]
    assert summary["r_mean"] == pytest.approx(np.mean([m["r"] for m in used]), abs=1e-12)
    assert summary["ubrmse_median"] == pytest.approx(np.median([m["ubrmse"] for m in used]),
                                                     abs=1e-12)


def test_parquet_split_file_and_per_network_figures_equal_numpy(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    sensors = {f"NET{s % 3}__ST{s}__X": 5 + 3 * s for s in range(9)}
    rows = _rows(np.random.default_rng(1), sensors)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "pred-00000-of-00001.parquet")
    split = {sid: ("validation" if i % 2 else "test") for i, sid in enumerate(sorted(sensors))}
    (tmp_path / "splits.csv").write_text("".join(f"{s},{v}\n" for s, v in split.items()))
    report = _evaluate(["--predictions", str(tmp_path / "pred-*.parquet"), "--output_dir",
                        str(tmp_path / "ev"), "--split_by", "file", "--split_file",
                        str(tmp_path / "splits.csv"), "--min_samples_per_sensor", "3"])
    predictors = {"model": lambda r: r["prediction"], "smap": lambda r: r["smap_sm"] / 255,
                  "gldas": lambda r: r["gldas_sm"] / 255}
    for s in ("validation", "test"):
        for name, f in predictors.items():
            mine = [r for r in rows if split[r["sensor_id"]] == s]
            expected = numpy_metrics([f(r) for r in mine], [r["label"] for r in mine])
            got = report["pooled"][s][name]
            assert got["n"] == expected["n"]
            for k in ("bias", "rmse", "ubrmse", "r"):
                assert got[k] == pytest.approx(expected[k], abs=1e-9), (s, name, k)
            for net in ("NET0", "NET1", "NET2"):
                sub = [r for r in mine if r["sensor_id"].startswith(net + "__")]
                if not sub:
                    continue
                expected = numpy_metrics([f(r) for r in sub], [r["label"] for r in sub])
                got = report["per_network"][s][net][name]
                for k in ("n", "bias", "rmse", "ubrmse", "r"):
                    assert got[k] == pytest.approx(expected[k], abs=1e-9), (s, net, name, k)
    with open(tmp_path / "ev" / "per_sensor.csv") as f:
        per_sensor = {(r["split"], r["sensor_id"], r["predictor"]): r for r in csv.DictReader(f)}
    for sid in sensors:
        mine = [r for r in rows if r["sensor_id"] == sid]
        expected = numpy_metrics([r["prediction"] for r in mine], [r["label"] for r in mine])
        got = per_sensor[(split[sid], sid, "model")]
        assert int(got["n"]) == expected["n"]
        for k in ("bias", "rmse", "ubrmse", "r"):
            assert float(got[k]) == pytest.approx(expected[k], abs=5e-7), (sid, k)  # 6 decimals
