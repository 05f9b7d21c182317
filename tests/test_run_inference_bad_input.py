"""run_inference under bad flags and damaged shards, run from the command line."""

import csv
import glob
import json
import os
import subprocess
import sys

import pytest

import support
from transforms.dataset import tfrecord_io

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(argv):
    proc = subprocess.run([sys.executable, "-m", "pipelines.run_inference", *argv],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def own_model(tmp_path_factory):
    """This module's own copy of the reference model (no sharing with other tests)."""
    return support.export_model(tmp_path_factory.mktemp("model"), seed=5, frozen=False)


@pytest.fixture(scope="module")
def many_small(sample_ceop_zip, tmp_path_factory):
    """One shard of 48 small (16x16) examples, and the same cut at 80 %."""
    records = [r for s in sample_ceop_zip.shards for r in tfrecord_io.read_shard(s)] * 2
    folder = tmp_path_factory.mktemp("many")
    whole = folder / "whole" / "data-00000-of-00001.tfrecord.gz"
    cut = folder / "cut" / "data-00000-of-00001.tfrecord.gz"
    for p in (whole, cut):
        p.parent.mkdir()
    tfrecord_io.write_shard(str(whole), records)
    data = whole.read_bytes()
    cut.write_bytes(data[:int(len(data) * 0.8)])
    readable = 0
    try:
        for _ in tfrecord_io.read_shard(str(cut)):
            readable += 1
    except tfrecord_io.CorruptShardError:
        pass
    assert 10 < readable < len(records)
    return records, str(whole), str(cut), readable


def test_wrong_image_size_fails_fast_naming_both_sizes(sample_ceop_zip, own_model, tmp_path):
    rc, _, stderr = run_cli(["--input_data_path", sample_ceop_zip.shards_glob,
                             "--exported_model_dir", own_model, "--image_size", "32",
                             "--output_path", str(tmp_path / "p")])
    assert rc == 1
    assert "are 16x16 but --image_size is 32" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not glob.glob(str(tmp_path / "p*"))


@pytest.mark.parametrize("flag", ["--num_inference_samples", "--num_skip_samples"])
def test_negative_sample_counts_are_usage_errors(sample_ceop_zip, own_model, flag):
    argv = ["--input_data_path", sample_ceop_zip.shards_glob, "--exported_model_dir", own_model,
            "--image_size", "16", "--num_inference_samples", "2", flag, "-1"]
    rc, stdout, stderr = run_cli(argv)
    assert rc == 2 and f"{flag} must be 0 or more, not -1" in stderr
    assert "Prediction" not in stdout


def test_skipping_past_the_end_says_so(sample_ceop_zip, own_model):
    rc, stdout, stderr = run_cli(["--input_data_path", sample_ceop_zip.shards_glob,
                                  "--exported_model_dir", own_model, "--image_size", "16",
                                  "--num_inference_samples", "5", "--num_skip_samples", "34"])
    assert rc == 0
    assert len([l for l in stdout.splitlines() if l.startswith("Prediction ")]) == 2
    assert "only 2 examples after skipping 34 (asked for 5)" in stderr


def test_sample_mode_prints_what_it_read_before_a_corrupt_record(many_small, own_model):
    records, whole, cut, readable = many_small
    asked = readable + 5
    rc_whole, out_whole, _ = run_cli(["--input_data_path", whole, "--exported_model_dir",
                                      own_model, "--image_size", "16", "--batch_size", "4",
                                      "--num_inference_samples", str(asked)])
    rc, stdout, stderr = run_cli(["--input_data_path", cut, "--exported_model_dir", own_model,
                                  "--image_size", "16", "--batch_size", "4",
                                  "--num_inference_samples", str(asked)])
    assert rc_whole == 0 and rc == 1
    def values(text):
        return [float(l.split(": ")[1]) for l in text.splitlines() if l.startswith("Prediction ")]

    # every example read before the damage is predicted and printed (batch
    # composition differs at the end, hence the parity tolerance)
    assert values(stdout) == pytest.approx(values(out_whole)[:readable], abs=1e-5)
    assert f"run_inference: error: {cut}: record {readable}: gzip stream error" in stderr


def test_corrupt_shard_in_a_full_run_keeps_its_head(many_small, own_model, tmp_path):
    records, whole, cut, readable = many_small
    out = str(tmp_path / "p")
    rc, stdout, stderr = run_cli(["--input_data_path", cut, "--exported_model_dir", own_model,
                                  "--image_size", "16", "--output_path", out])
    assert rc == 1
    rows = []
    for path in glob.glob(f"{out}-*-of-*.csv"):
        with open(path) as f:
            rows += list(csv.DictReader(f))
    assert sorted(int(r["index"]) for r in rows) == list(range(readable))
    (fail,) = [json.loads(line) for line in open(f"{out}-failures.jsonl")]
    assert fail["kind"] == "corrupt" and fail["index"] == readable
    summary = json.load(open(f"{out}-summary.json"))
    assert summary["predicted"] == readable
    assert summary["examples_read"] == readable + 1 and summary["accounted"]
