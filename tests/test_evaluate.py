"""evaluate: streaming metrics equal numpy, stable splits, report files."""

import csv
import json

import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from pipelines import evaluate
from support import assert_metrics_equal, numpy_metrics
from transforms import evaluation, runtime, synthetic


def _write_predictions(path, rng, sensors=12, rows_per_sensor=(1, 40)):
    rows = []
    for s in range(sensors):
        sid = f"NET{s % 3}__ST{s}__X"
        n = int(rng.integers(*rows_per_sensor))
        for k in range(n):
            y = float(rng.uniform(0.05, 0.5))
            rows.append({"sensor_id": sid, "timestamp": 1.5e12 + 3.6e6 * k,
                         "prediction": y + float(rng.normal(0, 0.05)),
                         "label": y if k % 7 else "",  # some unlabelled rows
                         "smap_sm": int(rng.integers(0, 256)), "gldas_sm": int(rng.integers(0, 256)),
                         "center_lat": 1.0, "center_long": 2.0, "shard": f"s{s}", "index": k,
                         "other": y * 0.9})
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


@pytest.mark.parametrize("seed", [0, 1])
def test_pipeline_equals_in_memory_computation(tmp_path, seed):
    rows = _write_predictions(tmp_path / "pred-00000-of-00001.csv", np.random.default_rng(seed))
    out = tmp_path / "eval"
    report = evaluate.run(["--predictions", str(tmp_path / "pred-*.csv"), "--output_dir", str(out),
                           "--extra_columns", "other", "--min_samples_per_sensor", "10"],
                          test_pipeline=TestPipeline(runner=runtime.LOCAL_RUNNER))
    labelled = [r for r in rows if r["label"] != ""]
    split = {r["sensor_id"]: evaluation.sensor_split(r["sensor_id"]) for r in rows}
    predictors = {"model": lambda r: r["prediction"], "smap": lambda r: r["smap_sm"] / 255,
                  "gldas": lambda r: r["gldas_sm"] / 255, "other": lambda r: r["other"]}
    for s in {split[r["sensor_id"]] for r in labelled}:
        in_split = [r for r in labelled if split[r["sensor_id"]] == s]
        for name, f in predictors.items():
            assert_metrics_equal(report["pooled"][s][name],
                                 numpy_metrics([f(r) for r in in_split], [r["label"] for r in in_split]))
            per_sensor = []
            for sid in sorted({r["sensor_id"] for r in in_split}):
                mine = [r for r in in_split if r["sensor_id"] == sid]
                per_sensor.append(numpy_metrics([f(r) for r in mine], [r["label"] for r in mine]))
            used = [m for m in per_sensor if m["n"] >= 10]
            summary = report["per_sensor_summary"][s][name]
            assert summary["sensors_used"] == len(used)
            assert summary["sensors_excluded_min_samples"] == len(per_sensor) - len(used)
            rs = [m["r"] for m in used if m["r"] is not None]
            if rs:
                assert summary["r_mean"] == pytest.approx(np.mean(rs), abs=1e-9)
                assert summary["r_median"] == pytest.approx(np.median(rs), abs=1e-9)
            ub = [m["ubrmse"] for m in used]
            if ub:
                assert summary["ubrmse_mean"] == pytest.approx(np.mean(ub), abs=1e-9)
    json.dumps(report, allow_nan=False)  # NaN-free
    with open(out / "per_sensor.csv") as f:
        per_sensor_rows = list(csv.DictReader(f))
    assert len(per_sensor_rows) == 4 * len({r["sensor_id"] for r in labelled})
    md = (out / "metrics.md").read_text()
    assert "| Experiment | Validation ubRMSE | Validation RMSE | Validation Correlation |" in md
    for name in ("SMAP", "GLDAS", "Model", "other"):
        assert f"| {name} |" in md
    for png in ("scatter_model.png", "scatter_smap.png", "per_sensor_r.png",
                "per_sensor_ubrmse.png", "timeseries.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, png


def test_generator_baselines_come_out_as_built(tmp_path):
    """On the generator's data, SMAP and GLDAS correlate with the label as the
    generator's formula implies (computed here in memory from its own draws)."""
    paths = synthetic.generate(synthetic.SampleConfig(
        output_dir=str(tmp_path / "s"), num_shards=2, examples_per_shard=150, image_size=8,
        ismn_days=200, seed=4), log=lambda *_: None)
    rng = np.random.default_rng(0)
    draws = [synthetic.draw_inputs(rng) for _ in range(20000)]
    labels = [synthetic.label_from_inputs(x, float(rng.normal(0, 0.015))) for x in draws]
    expected_r = {name: np.corrcoef([getattr(x, field) / 255 for x in draws], labels)[0, 1]
                  for name, field in (("smap", "smap_sm"), ("gldas", "gldas_sm"))}
    report = evaluate.run(["--input_data_path", paths.shards_glob, "--output_dir",
                           str(tmp_path / "eval"), "--split_by", "none"],
                          test_pipeline=TestPipeline(runner=runtime.LOCAL_RUNNER))
    pooled = report["pooled"]["all"]
    n = pooled["smap"]["n"]
    assert n == sum(1 for line in open(paths.ground_truth) if '"prelabelled"' in line)
    assert n > 50
    tolerance = 3 / np.sqrt(n)  # a few standard errors of r
    for name in ("smap", "gldas"):
        assert pooled[name]["r"] == pytest.approx(expected_r[name], abs=tolerance), name
    assert pooled["smap"]["r"] > pooled["gldas"]["r"]
    assert "model" not in pooled  # shards carry no predictions
