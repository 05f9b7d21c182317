"""evaluate: an example is (shard, index, sensor, time); rows of different
examples that share an input shard's name are all evaluated, and the run
says once that shard names collide; an example read twice is counted once."""

import csv
import json

import numpy as np
from apache_beam.testing.test_pipeline import TestPipeline

from pipelines import evaluate
from support import assert_metrics_equal, numpy_metrics
from transforms import runtime
from transforms.evaluation import duplicates, job

SHARD = "data-00000-of-00001.tfrecord.gz"  # the name every cut_examples output has


def _rows(rng, sensors, n, start):
    """``n`` labelled rows of ``sensors``, at indexes 0..n-1 of ``SHARD``."""
    rows = []
    for k in range(n):
        y = float(rng.uniform(0.05, 0.5))
        rows.append({"sensor_id": sensors[k % len(sensors)], "timestamp": start + 3.6e6 * k,
                     "prediction": y + float(rng.normal(0, 0.05)), "label": y,
                     "smap_sm": int(rng.integers(0, 256)), "gldas_sm": int(rng.integers(0, 256)),
                     "shard": SHARD, "index": k})
    return rows


def _write(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _source(rows, path):
    return [{**r, "_source": f"{path}:{k + 2}"} for k, r in enumerate(rows)]


def test_rows_sharing_only_shard_and_index_are_distinct_examples():
    rng = np.random.default_rng(0)
    a = _source(_rows(rng, ["A__S1__X"], 3, 1.5e12), "a.csv")
    b = _source(_rows(rng, ["B__S2__X"], 3, 1.6e12), "b.csv")
    copy = {**a[1], "_source": "old.csv:3", "timestamp": str(a[1]["timestamp"])}  # as text
    out = list(duplicates.first_of_duplicates(((SHARD, "1"), [b[1], copy, a[1]])))
    kept = [o for o in out if isinstance(o, dict)]
    tagged = {o.tag: o.value for o in out if not isinstance(o, dict)}
    assert kept == [a[1], b[1]]  # one row per example, in source order
    assert tagged["bad"]["kind"] == "duplicate" and tagged["bad"]["source"] == "old.csv:3"
    assert "a.csv:3" in tagged["bad"]["reason"]
    assert tagged["collisions"] == (SHARD, 2)
    alone = list(duplicates.first_of_duplicates(((SHARD, "0"), [a[0]])))
    assert alone == [a[0]]  # one example: no collision


def test_collision_summary_adds_up_per_shard_name():
    assert duplicates.collision_summary([("x", 2), ("y", 3), ("x", 2)]) == {
        "shard_name_collisions": 7, "colliding_shard_names": ["x", "y"]}
    assert duplicates.collision_summary([]) == {"shard_name_collisions": 0,
                                                "colliding_shard_names": []}


def test_two_datasets_with_the_same_shard_names_are_all_evaluated(tmp_path, capsys):
    rng = np.random.default_rng(1)
    first = _rows(rng, ["NETA__S1__X", "NETA__S2__X"], 40, 1.5e12)
    second = _rows(rng, ["NETB__S3__X", "NETB__S4__X"], 30, 1.6e12)
    _write(tmp_path / "pred-a.csv", first)
    _write(tmp_path / "pred-b.csv", second)
    _write(tmp_path / "pred-c-stale.csv", first[5:7])  # an earlier run's copy of two examples
    out = tmp_path / "eval"
    metrics = evaluate.run(["--predictions", str(tmp_path / "pred-*.csv"), "--output_dir",
                            str(out), "--split_by", "none", "--min_samples_per_sensor", "1",
                            "--bootstrap_samples", "0"],
                           test_pipeline=TestPipeline(runner=runtime.LOCAL_RUNNER))
    every = first + second
    for name, value in (("model", lambda r: r["prediction"]),
                        ("smap", lambda r: r["smap_sm"] / 255)):
        assert_metrics_equal(metrics["pooled"]["all"][name],
                             numpy_metrics([value(r) for r in every], [r["label"] for r in every]))
    assert metrics["rows_set_aside"]["duplicate"] == 2
    shared = 2 * min(len(first), len(second))  # indexes 0..29 hold one example of each
    assert metrics["shard_name_collisions"] == shared
    assert metrics["colliding_shard_names"] == [SHARD]
    on_disk = json.load(open(out / "metrics.json"))
    assert on_disk["shard_name_collisions"] == shared
    stale = [json.loads(line) for line in open(out / "bad_rows.jsonl")]
    assert sorted(b["source"].rsplit("/", 1)[1] for b in stale) == ["pred-c-stale.csv:2",
                                                                     "pred-c-stale.csv:3"]
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "shard names collide" in line] == [
        job.collision_line(metrics)]
    assert f"{shared} examples" in job.collision_line(metrics) and SHARD in err
