"""End-to-end runs of the merge on generated data, compared with the ground truth."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from apache_beam.testing.test_pipeline import TestPipeline

from support import read_failures as _failures, read_truth as _truth
from pipelines import combine_ismn_data
from transforms.dataset import example_proto, tfrecord_io
from transforms import merge, runtime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _args(paths, out, ismn_path=None, shards_glob=None):
    return ["--input_data_path", shards_glob or paths.shards_glob,
            "--ismn_data_path", ismn_path or paths.ismn_path, "--output_dir", str(out)]


def run_test_pipeline(argv):
    return combine_ismn_data.run(argv, test_pipeline=TestPipeline(runner=runtime.LOCAL_RUNNER))


def run_cli(argv):
    proc = subprocess.run([sys.executable, "-m", "pipelines.combine_ismn_data", *argv],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def check_against_ground_truth(paths, out, summary):
    truth = _truth(paths)
    by_shard = {}
    for row in truth:
        by_shard.setdefault(row["shard"], []).append(row)
    for shard_path in paths.shards:
        name = os.path.basename(shard_path)
        inputs = list(tfrecord_io.read_shard(shard_path))
        outputs = list(tfrecord_io.read_shard(os.path.join(out, name)))
        kept = [(row, inputs[row["index"]]) for row in sorted(by_shard[name], key=lambda r: r["index"])
                if row["outcome"] in ("success", "prelabelled")]
        assert len(outputs) == len(kept), name
        for got, (row, original) in zip(outputs, kept):  # same order
            if row["outcome"] == "prelabelled":
                assert got == original  # byte for byte
            else:
                merged = tf.train.Example.FromString(got)
                assert merged.features.feature["sm_0_5"].float_list.value == [
                    pytest.approx(np.float32(row["label"]), abs=0)]
                del merged.features.feature["sm_0_5"]
                assert merged == tf.train.Example.FromString(original)
    expected_failures = {(r["shard"], r["index"], r["outcome"]) for r in truth
                         if r["outcome"] in ("lookup", "value")}
    got_failures = {(f["shard"], f["index"], f["kind"]) for f in _failures(out)}
    assert got_failures == expected_failures
    c = summary["counters"]
    count = lambda outcome: sum(r["outcome"] == outcome for r in truth)  # noqa: E731
    assert c["success"] == count("success")
    assert c["already_labelled"] == count("prelabelled")
    assert c.get("lookup_failure", 0) == count("lookup")
    assert c.get("value_failure", 0) == count("value")
    assert c["examples_read"] == len(truth)
    assert c["examples_written"] == count("success") + count("prelabelled")
    assert c.get("ambiguous_station", 0) == sum(bool(r.get("ambiguous_station")) for r in truth)
    assert summary["accounted"] and not summary["incomplete_shards"]
    # "success" is the released Total success: every example written
    assert (summary["success"], summary["merged_from_ismn"], summary["lookup_failures"],
            summary["value_failures"], summary["already_labelled"], summary["examples_read"],
            summary["examples_written"]) == (
        count("success") + count("prelabelled"), count("success"), count("lookup"),
        count("value"), count("prelabelled"), len(truth), count("success") + count("prelabelled"))
    assert summary["sensor_type_mismatch"] == sum(bool(r.get("sensor_type_mismatch"))
                                                  for r in truth)
    for report in summary["shards"]:
        assert report["accounted"]
    assert sorted(os.listdir(out)) == sorted(
        [os.path.basename(p) for p in paths.shards] + ["failures.jsonl", "ismn_provenance.jsonl",
                                                       "shards.jsonl", "summary.json"])
    with open(os.path.join(out, "summary.json")) as f:
        assert json.load(f)["counters"] == c


def test_test_pipeline_ceop_zip(sample_ceop_zip, tmp_path):
    summary = run_test_pipeline(_args(sample_ceop_zip, tmp_path / "out"))
    check_against_ground_truth(sample_ceop_zip, str(tmp_path / "out"), summary)
    assert [s["shard"] for s in summary["shards"]] == [
        os.path.basename(p) for p in sample_ceop_zip.shards]


def test_test_pipeline_header_values_dir(sample_hv_dir, tmp_path):
    summary = run_test_pipeline(_args(sample_hv_dir, tmp_path / "out"))
    check_against_ground_truth(sample_hv_dir, str(tmp_path / "out"), summary)


def test_cli_two_workers_and_rerun_is_safe(sample_ceop_zip, tmp_path):
    out = tmp_path / "out"
    argv = _args(sample_ceop_zip, out) + ["--num_workers", "2"]
    rc, stdout, stderr = run_cli(argv)
    assert rc == 0, stderr[-3000:]
    truth = _truth(sample_ceop_zip)
    n = lambda o: sum(r["outcome"] == o for r in truth)  # noqa: E731
    assert (f"Total success: {n('success') + n('prelabelled')}, Total lookup failures: "
            f"{n('lookup')}, Total value failures: {n('value')}\n") in stdout
    with open(out / "summary.json") as f:
        summary = json.load(f)
    check_against_ground_truth(sample_ceop_zip, str(out), summary)
    before = {p: open(out / p, "rb").read() for p in os.listdir(out) if p.endswith(".gz")}
    rc, _, stderr = run_cli(argv)  # again, into the same directory
    assert rc == 0, stderr[-3000:]
    after = {p: open(out / p, "rb").read() for p in os.listdir(out) if p.endswith(".gz")}
    assert before == after
    assert not [p for p in os.listdir(out) if ".tmp" in p]


def test_good_flags_only_changes_only_flagged_outcomes(sample_ceop_zip, tmp_path):
    summary = run_test_pipeline(_args(sample_ceop_zip, tmp_path / "out") + ["--ismn_good_flags_only"])
    truth = _truth(sample_ceop_zip)
    not_good = sum(r["outcome"] == "success" and r["flag"] != "G" for r in truth)
    assert not_good > 0  # the sample has flagged label readings
    assert summary["counters"].get("success", 0) == sum(r["outcome"] == "success" for r in truth) - not_good


# ---------------------------------------------------------------- bad input

def _copy_sample(paths, tmp_path):
    root = tmp_path / "sample"
    shutil.copytree(os.path.dirname(os.path.dirname(paths.shards[0])), root)
    return root


def test_corrupt_shard_is_reported_and_others_complete(sample_ceop_zip, tmp_path):
    root = _copy_sample(sample_ceop_zip, tmp_path)
    bad = root / "shards" / os.path.basename(sample_ceop_zip.shards[1])
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    rc, stdout, stderr = run_cli(_args(sample_ceop_zip, out, shards_glob=str(root / "shards" / "*.gz")))
    assert rc == 1
    assert f"shard {bad} could not be read to its end" in stderr
    summary = json.load(open(out / "summary.json"))
    assert summary["incomplete_shards"] == [str(bad)]
    assert summary["accounted"]
    corrupt = [f for f in _failures(out) if f["kind"] == "corrupt"]
    assert len(corrupt) == 1 and corrupt[0]["shard"] == bad.name
    assert "gzip stream error" in corrupt[0]["reason"] or "truncated" in corrupt[0]["reason"]
    # the intact shards are exactly as in a clean run
    clean = tmp_path / "clean"
    run_test_pipeline(_args(sample_ceop_zip, clean))
    for p in (sample_ceop_zip.shards[0], sample_ceop_zip.shards[2]):
        name = os.path.basename(p)
        assert (out / name).read_bytes() == (clean / name).read_bytes()
    # the readable head of the corrupt shard is written, complete and valid
    head = list(tfrecord_io.read_shard(str(out / bad.name)))
    cut = corrupt[0]["index"]  # the first record not read
    assert cut > 0  # a real readable head (our reader keeps what gzip delivered before the cut)
    kept_before_cut = sum(r["shard"] == bad.name and r["index"] < cut
                          and r["outcome"] in ("success", "prelabelled")
                          for r in _truth(sample_ceop_zip))
    clean_shard = list(tfrecord_io.read_shard(str(clean / bad.name)))
    assert head == clean_shard[:kept_before_cut]


def test_malformed_examples_are_failures(sample_ceop_zip, tmp_path):
    shard = tmp_path / "in" / "data-00000-of-00001.tfrecord.gz"
    os.makedirs(shard.parent)
    good = next(tfrecord_io.read_shard(sample_ceop_zip.shards[0]))
    no_id = example_proto.encode_example({"timestamp": ("float", [1.5e12])})
    no_ts = example_proto.encode_example({"sensor_id": ("bytes", [b"SCAN__AdamsRanch_1__X"])})
    bad_id = example_proto.encode_example({"sensor_id": ("bytes", [b"SCAN_AdamsRanch_1"]),
                                           "timestamp": ("float", [1.5e12])})
    labelled_no_id = example_proto.encode_example({"sm_5_5": ("float", [0.2])})
    tfrecord_io.write_shard(str(shard), [no_id, b"\x0a\xff garbage", no_ts, bad_id,
                                         labelled_no_id, good])
    out = tmp_path / "out"
    summary = run_test_pipeline(_args(sample_ceop_zip, out, shards_glob=str(shard)))
    fails = {f["index"]: f for f in _failures(out)}
    assert fails[0]["kind"] == "malformed" and "sensor_id" in fails[0]["reason"]
    assert fails[1]["kind"] == "malformed" and "not a tf.train.Example" in fails[1]["reason"]
    assert fails[2]["kind"] == "malformed" and "timestamp" in fails[2]["reason"]
    assert fails[3]["kind"] == "malformed" and "NETWORK" in fails[3]["reason"]
    assert 4 not in fails  # labelled: written unchanged, whatever else it lacks
    assert summary["counters"]["malformed"] == 4
    assert summary["accounted"]
    written = list(tfrecord_io.read_shard(str(out / shard.name)))
    assert labelled_no_id in written


def test_malformed_ismn_file_fails_only_its_examples(sample_hv_dir, tmp_path):
    truth = _truth(sample_hv_dir)
    successes = [r for r in truth if r["outcome"] == "success"]
    network, station, sensor = max(
        {(r["ismn_network"], r["ismn_station"], r["ismn_sensor"]) for r in successes},
        key=lambda k: sum((r["ismn_network"], r["ismn_station"], r["ismn_sensor"]) == k
                          for r in successes))
    ismn_copy = tmp_path / "ISMN_sample"
    shutil.copytree(sample_hv_dir.ismn_path, ismn_copy)
    depth = "_".join(sensor.split("_")[-2:])
    target = [os.path.join(d, f) for d, _, fs in os.walk(ismn_copy / network / station)
              for f in fs if f"_sm_{depth}_" in f and sensor.split("_soil_")[0] in f][0]
    with open(target, "wb") as f:
        f.write(b"this is not\r\nan ISMN file\r\n")
    out = tmp_path / "out"
    summary = run_test_pipeline(_args(sample_hv_dir, out, ismn_path=str(ismn_copy)))
    hit = {(r["shard"], r["index"]) for r in truth if r.get("ismn_station") == station
           and r.get("ismn_network") == network and r["outcome"] in ("success", "value")}
    assert hit
    fails = {(f["shard"], f["index"]): f for f in _failures(out)}
    for key in hit:
        assert fails[key]["kind"] == "lookup"
        assert os.path.basename(target) in fails[key]["reason"]
        assert "could not be parsed" in fails[key]["reason"]
    assert summary["counters"]["ismn_files_failed"] == 1
    others = [r for r in successes if r["ismn_station"] != station]
    assert summary["counters"].get("success", 0) == len(others)
    assert summary["accounted"]


def test_missing_ismn_path_is_a_usage_error_before_running(sample_ceop_zip, tmp_path):
    out = tmp_path / "out"
    rc, stdout, stderr = run_cli(_args(sample_ceop_zip, out, ismn_path=str(tmp_path / "nope.zip")))
    assert rc == 2
    assert stderr.strip().splitlines() == [
        f"combine_ismn_data: error: --ismn_data_path {tmp_path / 'nope.zip'} does not exist"]
    assert not out.exists()


def test_unreadable_ismn_archive_labels_nothing_and_exits_1(sample_ceop_zip, tmp_path):
    out = tmp_path / "out"
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"this is not a zip file")
    rc, stdout, stderr = run_cli(_args(sample_ceop_zip, out, ismn_path=str(broken)))
    assert rc == 1
    assert "broken.zip is not a readable zip" in stderr
    truth = _truth(sample_ceop_zip)
    summary = json.load(open(out / "summary.json"))
    assert summary["counters"]["already_labelled"] == sum(r["outcome"] == "prelabelled" for r in truth)
    assert summary["merged_from_ismn"] == 0
    reasons = {f["reason"] for f in _failures(out) if f["kind"] == "lookup"}
    assert reasons and all("broken.zip is not a readable zip" in r for r in reasons)
    assert summary["accounted"]


def test_missing_required_flags():
    with pytest.raises(runtime.UsageError, match="--ismn_data_path and --output_dir required"):
        combine_ismn_data.run(["--input_data_path", "x"])


def test_no_input_shards_is_a_clear_error(sample_ceop_zip, tmp_path):
    rc, _, stderr = run_cli(_args(sample_ceop_zip, tmp_path / "o",
                                  shards_glob=str(tmp_path / "none-*.gz")))
    assert rc == 2 and "no input shards match" in stderr
    assert len(stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- units

def test_rewrite_shard_appends_label_without_reencoding(sample_ceop_zip, tmp_path):
    shard = sample_ceop_zip.shards[0]
    records = list(tfrecord_io.read_shard(shard))
    truth = [r for r in _truth(sample_ceop_zip) if r["shard"] == os.path.basename(shard)]
    to_label = [r["index"] for r in truth if r["outcome"] != "prelabelled"][:2]
    out = str(tmp_path / "o.gz")
    written, merged = merge.rewrite_shard(shard, out, {i: 0.25 for i in to_label})
    assert merged == len(to_label)
    got = list(tfrecord_io.read_shard(out))
    for i in to_label:
        assert example_proto.append_float_feature(records[i], "sm_0_5", 0.25) in got
    assert written == len(to_label) + sum(r["outcome"] == "prelabelled" for r in truth)


def test_classify_record(sample_ceop_zip):
    truth = {(r["shard"], r["index"]): r for r in _truth(sample_ceop_zip)}
    for shard in sample_ceop_zip.shards:
        for i, rec in enumerate(tfrecord_io.read_shard(shard)):
            what, value = merge.classify_record(shard, i, rec)
            row = truth[(os.path.basename(shard), i)]
            assert (what == "labelled") == (row["outcome"] == "prelabelled")
            if what == "ref":
                assert value.sensor_id == row["sensor_id"] and value.timestamp == row["timestamp"]


@pytest.mark.parametrize("fixture", ["sample_ceop_zip", "sample_hv_dir"])
def test_pipeline_equals_released_algorithm(fixture, request, tmp_path):
    """Same labels and counters as the per-example re-statement of the release."""
    from released_reference import released_merge

    paths = request.getfixturevalue(fixture)
    ismn_copy = str(tmp_path / os.path.basename(paths.ismn_path))  # ismn writes metadata beside it
    (shutil.copy if ismn_copy.endswith(".zip") else shutil.copytree)(paths.ismn_path, ismn_copy)
    ref_out = str(tmp_path / "released")
    counts = released_merge(paths.shards, ismn_copy, ref_out)
    summary = run_test_pipeline(_args(paths, tmp_path / "beam"))
    c = summary["counters"]
    assert (c["success"], c.get("lookup_failure", 0), c.get("value_failure", 0),
            c["already_labelled"]) == (counts.success, counts.lookup_failures,
                                       counts.value_failures, counts.already_labelled)
    # the released "Total success" counts every example written
    assert summary["success"] == counts.success + counts.already_labelled
    for shard in paths.shards:
        name = os.path.basename(shard)
        ours = [tf.train.Example.FromString(r)
                for r in tfrecord_io.read_shard(str(tmp_path / "beam" / name))]
        theirs = [tf.train.Example.FromString(r)
                  for r in tfrecord_io.read_shard(os.path.join(ref_out, name))]
        assert ours == theirs


def test_match_sensor_type_labels_from_the_ids_own_instrument(sample_ceop_zip, tmp_path):
    """CST-01 has a ThetaProbe and a CS655 at 0.05 m; the released rule takes the
    first in the archive (ThetaProbe) whatever the id says. With
    --match_sensor_type an id of type CS655 is labelled from the CS655 series."""
    truth = _truth(sample_ceop_zip)
    mismatched = [r for r in truth if r.get("sensor_type_mismatch")]
    assert mismatched  # the sample has such ids
    summary = run_test_pipeline(_args(sample_ceop_zip, tmp_path / "out") + ["--match_sensor_type"])
    assert summary["sensor_type_mismatch"] == 0
    out = {}
    for shard in sample_ceop_zip.shards:
        name = os.path.basename(shard)
        for rec in tfrecord_io.read_shard(str(tmp_path / "out" / name)):
            ex = tf.train.Example.FromString(rec)
            sid = ex.features.feature["sensor_id"].bytes_list.value[0].decode()
            ts = ex.features.feature["timestamp"].float_list.value[0]
            out[(sid, ts)] = ex.features.feature["sm_0_5"].float_list.value
    failures = {(f["shard"], f["index"]) for f in _failures(str(tmp_path / "out"))}
    for r in mismatched:
        instrument = r["sensor_id"].split("__")[2]
        key = next(k for k in sample_ceop_zip.series
                   if k[:2] == (r["ismn_network"], r["ismn_station"])
                   and k[2].startswith(instrument + "_soil_moisture_0.05"))
        series = sample_ceop_zip.series[key]
        t = int(r["timestamp"]) // 1000
        hits = [i for i, x in enumerate(series.times) if t - 180 <= x <= t + 180]
        if len(hits) == 1:
            assert list(out[(r["sensor_id"], np.float32(r["timestamp"]))]) == [
                pytest.approx(np.float32(series.values[hits[0]]), abs=0)]
        else:
            assert (r["shard"], r["index"]) in failures
