"""Mistakes and damaged inputs that used to change results with exit 0
(issue 23): each run through the command line as a user runs it, on the
generated sample, checking the exit status, that inputs are untouched, and
that every row or example is counted once."""

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(module, argv, timeout=600, env=None):
    proc = subprocess.run([sys.executable, "-m", f"pipelines.{module}", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return proc.returncode, proc.stdout, proc.stderr


def digest(folder):
    return {name: hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
            for name in sorted(os.listdir(folder))}


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.strip() and " INFO " not in line]


@pytest.fixture(scope="module")
def merged(sample_ceop_zip, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("merged"))
    rc, _, stderr = run_cli("combine_ismn_data", [
        "--input_data_path", sample_ceop_zip.shards_glob, "--ismn_data_path",
        sample_ceop_zip.ismn_path, "--output_dir", out])
    assert rc == 0, stderr[-2000:]
    return os.path.join(out, "data-*-of-00003.tfrecord.gz")


@pytest.fixture(scope="module")
def predictions(merged, reference_model, tmp_path_factory):
    prefix = os.path.join(str(tmp_path_factory.mktemp("pred")), "pred")
    rc, _, stderr = run_cli("run_inference", [
        "--input_data_path", merged, "--exported_model_dir", reference_model,
        "--image_size", "16", "--output_path", prefix])
    assert rc == 0, stderr[-2000:]
    return prefix


# --- 1. an output that would replace an input -------------------------------

@pytest.mark.parametrize("output_format", ["tfrecord", "csv"])
def test_inference_output_that_would_replace_an_input_is_refused(
        sample_ceop_zip, reference_model, tmp_path, output_format):
    folder = tmp_path / "in"
    folder.mkdir()
    suffix = {"tfrecord": ".tfrecord.gz", "csv": ".csv"}[output_format]
    name = f"data-00000-of-00001{suffix}"
    shutil.copy(sample_ceop_zip.shards[0], folder / name)
    before = digest(folder)
    rc, _, stderr = run_cli("run_inference", [
        "--input_data_path", str(folder / "data-*"), "--exported_model_dir", reference_model,
        "--image_size", "16", "--output_format", output_format,
        "--output_path", str(folder / "data")])
    assert rc == 2, stderr[-2000:]
    (line,) = error_lines(stderr)
    assert str(folder / name) in line and "--output_path" in line
    assert digest(folder) == before


def test_evaluate_output_dir_holding_its_input_is_refused(predictions, tmp_path):
    folder = tmp_path / "e"
    folder.mkdir()
    shutil.copy(f"{predictions}-00000-of-00001.csv", folder / "per_sensor.csv")
    before = digest(folder)
    rc, _, stderr = run_cli("evaluate", ["--predictions", str(folder / "*.csv"),
                                         "--output_dir", str(folder)])
    assert rc == 2 and "per_sensor.csv" in error_lines(stderr)[0]
    assert digest(folder) == before


# --- 3. NaN readings, NaN labels, NaN losses --------------------------------

def nan_readings_zip(source, target):
    """``source`` with every reading of every ISMN file replaced by NaN."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith(".stm"):
                lines = []
                for line in data.decode().splitlines(keepends=True):
                    parts = line.split(" ")
                    if len(parts) > 12:
                        parts[12] = "NaN"
                    lines.append(" ".join(parts))
                data = "".join(lines).encode()
            dst.writestr(info, data)
    return target


def test_nan_readings_are_merged_as_released_but_counted(sample_ceop_zip, tmp_path):
    ismn = nan_readings_zip(sample_ceop_zip.ismn_path, str(tmp_path / "nan.zip"))
    out = str(tmp_path / "out")
    rc, stdout, stderr = run_cli("combine_ismn_data", [
        "--input_data_path", sample_ceop_zip.shards_glob, "--ismn_data_path", ismn,
        "--output_dir", out])
    assert rc == 0, stderr[-2000:]
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["merged_from_ismn"] > 0
    assert summary["nonfinite_labels"] == summary["merged_from_ismn"]
    shards = [json.loads(line) for line in open(os.path.join(out, "shards.jsonl"))]
    assert sum(r["nonfinite_labels"] for r in shards) == summary["nonfinite_labels"]
    assert f"({summary['nonfinite_labels']} of them NaN or infinite readings)" in stdout

    strict = str(tmp_path / "strict")
    rc, stdout, _ = run_cli("combine_ismn_data", [
        "--input_data_path", sample_ceop_zip.shards_glob, "--ismn_data_path", ismn,
        "--output_dir", strict, "--nonfinite_readings_as_value_failures"])
    strict_summary = json.load(open(os.path.join(strict, "summary.json")))
    assert rc == 0 and strict_summary["merged_from_ismn"] == 0
    assert strict_summary["value_failures"] == (summary["value_failures"]
                                                + summary["merged_from_ismn"])
    assert strict_summary["nonfinite_labels"] == 0

    # training leaves NaN labels out and says so; evaluation sets them aside
    training = str(tmp_path / "t")
    rc, stdout, stderr = run_cli("train", [
        "--input_data_path", os.path.join(out, "*.tfrecord.gz"), "--output_dir", training,
        "--image_size", "16", "--epochs", "1", "--train_fraction", "1",
        "--validation_fraction", "0"])
    if summary["already_labelled"]:
        assert rc == 0, stderr[-2000:]
        report = json.load(open(os.path.join(training, "training.json")))
        assert report["examples"]["train"] == summary["already_labelled"]
        n = summary["nonfinite_labels"]
        assert f"{n} example{'' if n == 1 else 's'} with a NaN or infinite label" in stdout


def test_a_diverging_loss_stops_training_exports_nothing_and_exits_1(merged, tmp_path):
    out = str(tmp_path / "t")
    rc, _, stderr = run_cli("train", [
        "--input_data_path", merged, "--output_dir", out, "--image_size", "16",
        "--epochs", "3", "--learning_rate", "1e35"])
    assert rc == 1, stderr[-2000:]
    (line,) = error_lines(stderr)
    assert "NaN or infinite" in line and "nothing was exported" in line
    assert not os.path.exists(os.path.join(out, "model"))
    assert not os.path.exists(os.path.join(out, "training.json"))


# --- 4. stale prediction files, duplicates ----------------------------------

def test_stale_prediction_files_are_named_and_evaluate_counts_each_example_once(
        merged, reference_model, tmp_path):
    prefix = str(tmp_path / "p" / "pred")
    common = ["--input_data_path", merged, "--exported_model_dir", reference_model,
              "--image_size", "16", "--output_path", prefix]
    rc, _, stderr = run_cli("run_inference", common)
    assert rc == 0, stderr[-2000:]
    first = json.load(open(f"{prefix}-summary.json"))
    assert first["outputs"] == [f"{prefix}-00000-of-00001.csv"] and first["stale_outputs"] == []
    rc, stdout, stderr = run_cli("run_inference", common + [
        "--direct_num_workers", "2", "--direct_running_mode", "multi_processing"])
    assert rc == 0, stderr[-2000:]
    second = json.load(open(f"{prefix}-summary.json"))
    assert second["stale_outputs"] == [f"{prefix}-00000-of-00001.csv"]
    assert f"{prefix}-00000-of-00001.csv" not in second["outputs"]
    assert all(path in stdout for path in second["outputs"][:1])
    assert "earlier run" in stderr

    rc, _, stderr = run_cli("evaluate", [
        "--predictions", f"{prefix}-*.csv", "--output_dir", str(tmp_path / "e"),
        "--split_by", "none", "--min_samples_per_sensor", "1"])
    assert rc == 0, stderr[-2000:]
    metrics = json.load(open(tmp_path / "e" / "metrics.json"))
    examples = second["examples_read"]
    labelled = sum(1 for row in csv.DictReader(open(f"{prefix}-00000-of-00001.csv"))
                   if row["label"])
    assert metrics["rows_set_aside"]["duplicate"] == examples
    assert metrics["pooled"]["all"]["model"]["n"] == labelled
    assert sum(metrics["rows"].values()) == examples


# --- 5. non-finite predictions ----------------------------------------------

def test_nonfinite_predictions_are_counted_and_every_predictor_uses_the_same_pairs(
        predictions, tmp_path):
    rows = list(csv.DictReader(open(f"{predictions}-00000-of-00001.csv")))
    labelled = [i for i, r in enumerate(rows) if r["label"]]
    broken = labelled[::2]
    for k, i in enumerate(broken):
        rows[i]["prediction"] = ("nan", "inf", "-inf")[k % 3]
    path = tmp_path / "pred-00000-of-00001.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    rc, _, stderr = run_cli("evaluate", ["--predictions", str(path), "--output_dir",
                                         str(tmp_path / "e"), "--split_by", "none",
                                         "--min_samples_per_sensor", "1"])
    assert rc == 0, stderr[-2000:]
    metrics = json.load(open(tmp_path / "e" / "metrics.json"))
    assert metrics["rows_set_aside"]["nonfinite"] == len(broken)
    n = {p: m["n"] for p, m in metrics["pooled"]["all"].items()}
    assert n == {"model": len(labelled) - len(broken), "smap": len(labelled) - len(broken),
                 "gldas": len(labelled) - len(broken)}
    bad = [json.loads(line) for line in open(tmp_path / "e" / "bad_rows.jsonl")]
    assert sorted(b["source"] for b in bad) == sorted(f"{path}:{i + 2}" for i in broken)

    for row in rows:  # every prediction NaN: no model row, and exit 1
        row["prediction"] = "nan"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    rc, _, stderr = run_cli("evaluate", ["--predictions", str(path), "--output_dir",
                                         str(tmp_path / "e2"), "--split_by", "none"])
    assert rc == 1


# --- 6. matched shards that cannot be opened; a folder for a glob -------------

def test_a_dangling_link_among_the_shards_is_exit_1_naming_it(sample_ceop_zip, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(sample_ceop_zip.shards[0], folder / "data-00000-of-00002.tfrecord.gz")
    os.symlink(str(tmp_path / "gone"), folder / "data-00001-of-00002.tfrecord.gz")
    rc, _, stderr = run_cli("combine_ismn_data", [
        "--input_data_path", str(folder / "*.tfrecord.gz"), "--ismn_data_path",
        sample_ceop_zip.ismn_path, "--output_dir", str(tmp_path / "out")])
    assert rc == 1
    (line,) = error_lines(stderr)
    assert "data-00001-of-00002.tfrecord.gz" in line and "link" in line


def test_a_folder_instead_of_a_glob_is_a_usage_error(sample_ceop_zip, reference_model, tmp_path):
    folder = os.path.dirname(sample_ceop_zip.shards[0])
    rc, _, stderr = run_cli("run_inference", [
        "--input_data_path", folder, "--exported_model_dir", reference_model,
        "--output_path", str(tmp_path / "p")])
    assert rc == 2 and "is a folder" in error_lines(stderr)[0]
    assert not os.listdir(tmp_path)


# --- 8. a report names only its own files -------------------------------------

def test_evaluate_rerun_names_only_the_files_it_wrote(predictions, tmp_path):
    out = tmp_path / "e"
    out.mkdir()
    (out / "breakdown_old_run.png").write_bytes(b"an earlier run's plot")
    rc, stdout, stderr = run_cli("evaluate", ["--predictions", f"{predictions}-*.csv",
                                              "--output_dir", str(out),
                                              "--min_samples_per_sensor", "1"])
    assert rc == 0, stderr[-2000:]
    assert "breakdown_old_run.png" not in stdout
    metrics = json.load(open(out / "metrics.json"))
    assert "breakdown_old_run.png" not in metrics["files"]
    assert metrics["stale_files"] == ["breakdown_old_run.png"] if "stale_files" in metrics else True
    assert "breakdown_old_run.png" in stderr
    assert set(metrics["files"]) <= set(os.listdir(out))


# --- 10. sizes and empty training data ------------------------------------------

def test_sample_mode_with_the_wrong_image_size_fails_up_front(merged, reference_model):
    rc, stdout, stderr = run_cli("run_inference", [
        "--input_data_path", merged, "--exported_model_dir", reference_model,
        "--num_inference_samples", "3"])
    assert rc == 1 and "Prediction" not in stdout
    assert "are 16x16 but --image_size is 512: run with --image_size 16" in stderr


def test_train_with_the_wrong_image_size_or_no_labels_is_one_line(sample_ceop_zip, merged,
                                                                   tmp_path):
    rc, _, stderr = run_cli("train", ["--input_data_path", merged, "--output_dir",
                                      str(tmp_path / "a")])
    assert rc == 1 and "run with --image_size 16" in error_lines(stderr)[0]
    assert not os.path.exists(tmp_path / "a" / "transformed")
    rc, _, stderr = run_cli("train", ["--input_data_path", merged, "--output_dir",
                                      str(tmp_path / "b"), "--image_size", "16",
                                      "--train_fraction", "0"])
    assert rc == 1, stderr[-2000:]
    (line,) = error_lines(stderr)
    assert "no labelled example" in line and "train split" in line


def test_export_failure_keeps_the_previous_model(tmp_path):
    from transforms.training.fit import export_atomically

    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"old")

    def failing(folder):
        os.makedirs(folder)
        open(os.path.join(folder, "saved_model.pb"), "wb").write(b"new, half written")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        export_atomically(str(model), failing)
    assert os.listdir(tmp_path) == ["model"]
    assert (model / "saved_model.pb").read_bytes() == b"old"

    export_atomically(str(model), lambda folder: (
        os.makedirs(folder), open(os.path.join(folder, "saved_model.pb"), "wb").write(b"new")))
    assert os.listdir(tmp_path) == ["model"] and (model / "saved_model.pb").read_bytes() == b"new"


# --- 11. an empty split the user asked for --------------------------------------

def test_a_time_split_without_data_is_exit_1_naming_the_years(predictions, tmp_path):
    rc, _, stderr = run_cli("evaluate", ["--predictions", f"{predictions}-*.csv",
                                         "--output_dir", str(tmp_path / "e"),
                                         "--split_by", "time", "--test_years", "1999"])
    assert rc == 1
    (line,) = error_lines(stderr)
    assert "test split (1999)" in line and "2016" in line


# --- 13-15. errors a user can act on ------------------------------------------------

def test_a_write_failure_inside_a_step_is_one_line_naming_the_file(sample_ceop_zip, tmp_path):
    out = tmp_path / "out"
    script = ("import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_FSIZE, "
              "(20000, 20000)); sys.argv = ['combine_ismn_data'] + sys.argv[1:]; "
              "runpy.run_module('pipelines.combine_ismn_data', run_name='__main__')")
    import signal

    proc = subprocess.run(
        [sys.executable, "-c", script, "--input_data_path", sample_ceop_zip.shards_glob,
         "--ismn_data_path", sample_ceop_zip.ismn_path, "--output_dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: signal.signal(signal.SIGXFSZ, signal.SIG_IGN))
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    last = error_lines(proc.stderr)[-1]
    assert "File too large while writing" in last and str(out) in last
    assert not [n for n in os.listdir(out) if n.startswith("data-")]  # no truncated shard


def test_a_garbage_saved_model_is_named(merged, tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(os.urandom(500))
    rc, _, stderr = run_cli("run_inference", [
        "--input_data_path", merged, "--exported_model_dir", str(model), "--image_size", "16",
        "--output_path", str(tmp_path / "p")])
    assert rc == 1 and str(model / "saved_model.pb") in error_lines(stderr)[0]


def test_parquet_predictions_are_checked_before_the_run(predictions, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 not really")
    rc, _, stderr = run_cli("evaluate", ["--predictions", str(corrupt), "--output_dir",
                                         str(tmp_path / "e")])
    assert rc == 1 and str(corrupt) in error_lines(stderr)[0]
    columns = tmp_path / "columns.parquet"
    pq.write_table(pa.table({"sensor_id": ["a"], "label": [0.2]}), str(columns))
    rc, stdout, stderr = run_cli("evaluate", ["--predictions", str(columns), "--output_dir",
                                              str(tmp_path / "e")])
    assert rc == 1 and "timestamp" in error_lines(stderr)[0] and not stdout.strip()


@pytest.mark.parametrize("argv,rc", [
    (["--extra_columns", "nosuchcol"], 2), (["--reference_predictor", "nosuch"], 2),
    (["--split_by", "file"], 2)])
def test_evaluate_flags_naming_nothing_are_refused(predictions, tmp_path, argv, rc):
    got, _, stderr = run_cli("evaluate", ["--predictions", f"{predictions}-*.csv",
                                          "--output_dir", str(tmp_path / "e"), *argv])
    assert got == rc and argv[0] in error_lines(stderr)[0]


def test_an_invalid_bucket_name_is_refused_at_once(sample_ceop_zip):
    rc, _, stderr = run_cli("combine_ismn_data", [
        "--input_data_path", sample_ceop_zip.shards_glob, "--ismn_data_path",
        sample_ceop_zip.ismn_path, "--output_dir", "gs://my-bucket-123/out",
        "--runner", "DataflowRunner", "--project", "p", "--region", "us-central1",
        "--temp_location", "gs://MY_BUCKET/tmp", "--dry_run=True"], timeout=30)
    assert rc == 2 and "--temp_location" in error_lines(stderr)[0]


def test_an_unreachable_bucket_fails_within_seconds_naming_the_path(tmp_path):
    import time

    start = time.time()
    rc, _, stderr = run_cli("evaluate", [
        "--input_data_path", "gs://my-bucket-123/merged/*.tfrecord.gz", "--output_dir",
        str(tmp_path / "e")], timeout=60)
    if rc == 0:
        pytest.skip("this machine reaches Cloud Storage")
    assert time.time() - start < 30
    assert rc == 1 and "gs://my-bucket-123/merged/*.tfrecord.gz" in error_lines(stderr)[-1]


# --- 16. no warnings on a valid evaluation ------------------------------------------

def test_a_valid_small_evaluation_prints_no_warning(predictions, tmp_path):
    rc, stdout, stderr = run_cli("evaluate", ["--predictions", f"{predictions}-*.csv",
                                              "--output_dir", str(tmp_path / "e"),
                                              "--min_samples_per_sensor", "1"])
    assert rc == 0, stderr[-2000:]
    assert "Warning" not in stdout + stderr and "WARNING" not in stdout + stderr


# --- 17. temporaries of killed runs; an output inside the ISMN download ----------------

def test_inference_removes_beam_temporaries_of_killed_runs(merged, reference_model, tmp_path):
    folder = tmp_path / "p"
    stale = folder / "beam-temp-pred-0123456789abcdef"
    stale.mkdir(parents=True)
    (stale / "half.csv").write_text("x")
    rc, _, stderr = run_cli("run_inference", [
        "--input_data_path", merged, "--exported_model_dir", reference_model,
        "--image_size", "16", "--output_path", str(folder / "pred")])
    assert rc == 0, stderr[-2000:]
    assert not [n for n in os.listdir(folder) if n.startswith("beam-temp-")]


def test_a_merge_output_inside_the_ismn_folder_is_refused(tmp_path):
    from transforms import synthetic

    paths = synthetic.generate(synthetic.SampleConfig(
        output_dir=str(tmp_path / "s"), num_shards=1, examples_per_shard=3, image_size=16,
        seed=4, ismn_format="ceop", ismn_layout="dir", ismn_days=10), log=lambda *_: None)
    rc, _, stderr = run_cli("combine_ismn_data", [
        "--input_data_path", paths.shards_glob, "--ismn_data_path", paths.ismn_path,
        "--output_dir", os.path.join(paths.ismn_path, "merged")])
    assert rc == 2 and "inside the ISMN download" in error_lines(stderr)[0]
    assert not os.path.exists(os.path.join(paths.ismn_path, "merged"))
