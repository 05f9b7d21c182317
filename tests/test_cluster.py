"""Cluster execution, checked offline: Dataflow dry runs, the portable Job API,
worker retries, and the worker container."""

import csv
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import apache_beam
import pytest

from pipelines import combine_ismn_data, run_inference
from transforms import merge as merge_flow
from transforms.merge import rewrite as merge
from transforms.dataset import tfrecord_io

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATAFLOW = ["--runner", "DataflowRunner", "--project", "my-project-123", "--region",
            "us-central1", "--temp_location", "gs://my-bucket-123/tmp", "--dry_run=True",
            "--no_auth", "--sdk_location=container", "--experiments", "use_runner_v2"]


# ---------------------------------------------------------------- container

def test_dockerfile_base_matches_installed_versions():
    with open(os.path.join(REPO, "Dockerfile")) as f:
        base = re.search(r"^FROM\s+(\S+)", f.read(), re.M).group(1)
    m = re.fullmatch(r"apache/beam_python(\d+)\.(\d+)_sdk:(\S+)", base)
    assert m, base
    # a Python the project supports (the image is built for one; tests run on any)
    assert (int(m.group(1)), int(m.group(2))) in {(3, 11), (3, 12), (3, 13)}
    with open(os.path.join(REPO, "setup.py")) as f:
        assert 'python_requires=">=3.11,<3.14"' in f.read()
    assert m.group(3) == apache_beam.__version__


def test_dockerfile_lints_clean():
    hadolint = shutil.which("hadolint") or os.path.join(os.path.dirname(sys.executable), "hadolint")
    proc = subprocess.run([hadolint, os.path.join(REPO, "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------- Dataflow

def _environments(job):
    return [env.payload for env in job.proto_pipeline.components.environments.values()]


def test_combine_dataflow_job_builds_offline(tmp_path):
    r = combine_ismn_data.run(DATAFLOW + [
        "--setup_file", os.path.join(REPO, "setup.py"),
        "--ismn_data_path", "gs://my-bucket-123/ismn/ISMN.zip",
        "--output_dir", "gs://my-bucket-123/full"])
    assert r["dry_run"] and merge_flow.exit_code(r) == 0
    names = r["transforms"]
    for step in ("Match shards", "Merge ISMN labels/Scan shards/Walk records",
                 "Merge ISMN labels/Read ISMN catalog/List ISMN files",
                 "Merge ISMN labels/Resolve stations", "Merge ISMN labels/Match readings",
                 "Merge ISMN labels/Rewrite shards/Write merged shards", "Write failures"):
        assert any(n == step or n.startswith(step + "/") for n in names), step
    assert r["job"].proto.type  # a Dataflow job message was built
    # staging: the project is built from setup.py and shipped to the workers
    job = r["job"]
    assert job.options.get_all_options()["setup_file"] == os.path.join(REPO, "setup.py")
    staged = [dep.role_payload for env in job.proto_pipeline.components.environments.values()
              for dep in env.dependencies]
    assert any(b"workflow.tar.gz" in p for p in staged), staged


def test_inference_dataflow_job_with_custom_container():
    image = "us-docker.pkg.dev/my-project-123/beam/soil-moisture:0.1.0"
    r = run_inference.run(DATAFLOW + [
        "--sdk_container_image", image,
        "--exported_model_dir", "gs://my-bucket-123/model",
        "--output_path", "gs://my-bucket-123/pred/p", "--output_format", "parquet"])
    assert r["dry_run"]
    assert any(n.startswith("Predict/Run model") for n in r["transforms"])
    assert any(n.startswith("Write predictions/Write Parquet") for n in r["transforms"])
    assert any(image.encode() in payload for payload in _environments(r["job"]))


def test_evaluate_and_train_dataflow_jobs_build_offline():
    from pipelines import evaluate, train

    r = evaluate.run(DATAFLOW + ["--predictions", "gs://my-bucket-123/pred/p-*.csv",
                                 "--output_dir", "gs://my-bucket-123/eval"])
    assert r["dry_run"] and any(n.startswith("Evaluate/Per-sensor stats") for n in r["transforms"])
    r = train.run(DATAFLOW + ["--input_data_path", "gs://my-bucket-123/merged/data-*.tfrecord.gz",
                              "--output_dir", "gs://my-bucket-123/train"])
    assert r["dry_run"]
    assert any(n.startswith("Preprocess/Analyze train") for n in r["transforms"])
    assert any(n.startswith("Preprocess/Write test") for n in r["transforms"])


# ---------------------------------------------------------------- portable runner

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def job_service():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m",
                             "apache_beam.runners.portability.local_job_service_main",
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("local job service did not start")
    yield f"localhost:{port}"
    proc.terminate()
    proc.wait(timeout=30)


def test_portable_runner_equals_direct(sample_ceop_zip, reference_model, tmp_path, job_service):
    portable = ["--runner", "PortableRunner", "--job_endpoint", job_service,
                "--environment_type", "LOOPBACK"]
    base = ["--input_data_path", sample_ceop_zip.shards_glob,
            "--ismn_data_path", sample_ceop_zip.ismn_path]
    direct = combine_ismn_data.run(base + ["--output_dir", str(tmp_path / "direct")])
    ported = combine_ismn_data.run(base + portable + ["--output_dir", str(tmp_path / "portable")])
    for shard in sample_ceop_zip.shards:
        name = os.path.basename(shard)
        assert (tmp_path / "direct" / name).read_bytes() == (tmp_path / "portable" / name).read_bytes()
    fails = lambda d: sorted(open(tmp_path / d / "failures.jsonl").read().splitlines())  # noqa: E731
    assert fails("direct") == fails("portable")
    assert ported["counters"] == direct["counters"]

    inf = ["--input_data_path", str(tmp_path / "direct" / "data-*.tfrecord.gz"),
           "--exported_model_dir", reference_model, "--image_size", "16"]
    run_inference.run(inf + ["--output_path", str(tmp_path / "pd")])
    run_inference.run(inf + portable + ["--output_path", str(tmp_path / "pp")])
    def rows(prefix):
        """(shard, index) -> the row's cells; the prediction as a float."""
        out = {}
        for f in sorted(tmp_path.glob(f"{prefix}-*-of-*.csv")):
            for r in csv.DictReader(open(f)):
                out[(r["shard"], r["index"])] = {**r, "prediction": float(r["prediction"])}
        return out

    direct_rows, portable_rows = rows("pd"), rows("pp")
    assert direct_rows and direct_rows.keys() == portable_rows.keys()
    for key, r in direct_rows.items():
        other = portable_rows[key]
        # the runners batch differently, and a batch's composition moves the
        # float32 result in its last bits: the project's parity tolerance
        assert other["prediction"] == pytest.approx(r["prediction"], abs=1e-5)
        assert {k: v for k, v in other.items() if k != "prediction"} == {
            k: v for k, v in r.items() if k != "prediction"}


# ---------------------------------------------------------------- retries

class FlakyRewriteShardFn(merge.RewriteShardFn):
    """Dies mid-write on the first attempt at each shard, like a lost worker."""

    marker_dir = None

    def process(self, element):
        shard = element[0]
        marker = os.path.join(self.marker_dir, os.path.basename(shard))
        if not os.path.exists(marker):
            open(marker, "w").close()
            writer = tfrecord_io.AtomicShardWriter(
                os.path.join(self.output_dir, os.path.basename(shard)))
            writer.write(b"half a shard")
            writer._out.flush()
            raise RuntimeError(f"injected failure writing {shard}")  # no abort: a crash
        yield from super().process(element)


def test_merge_survives_a_failed_attempt(sample_ceop_zip, tmp_path, monkeypatch):
    original = merge.RewriteShardFn
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setattr(FlakyRewriteShardFn, "marker_dir", str(markers))
    monkeypatch.setattr(merge, "RewriteShardFn", FlakyRewriteShardFn)
    base = ["--input_data_path", sample_ceop_zip.shards_glob,
            "--ismn_data_path", sample_ceop_zip.ismn_path]
    # the bundle-based DirectRunner retries failed bundles, as cluster runners do
    flaky = combine_ismn_data.run(base + ["--output_dir", str(tmp_path / "flaky"),
                                          "--runner", "BundleBasedDirectRunner"])
    assert len(os.listdir(markers)) == len(sample_ceop_zip.shards)  # every shard failed once
    monkeypatch.setattr(merge, "RewriteShardFn", original)
    clean = combine_ismn_data.run(base + ["--output_dir", str(tmp_path / "clean")])
    for shard in sample_ceop_zip.shards:
        name = os.path.basename(shard)
        assert (tmp_path / "flaky" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()
    assert sorted(open(tmp_path / "flaky" / "failures.jsonl").read().splitlines()) == \
        sorted(open(tmp_path / "clean" / "failures.jsonl").read().splitlines())
    for key in ("examples_read", "examples_written", "success", "lookup_failures",
                "value_failures", "already_labelled"):
        assert flaky[key] == clean[key], key
    assert flaky["accounted"] and merge_flow.exit_code(flaky) == 0
    assert not [f for f in os.listdir(tmp_path / "flaky") if ".tmp-" in f]  # debris removed


def test_a_map_dry_run_of_an_unreachable_gs_scene_fails_in_seconds(monkeypatch, capfd):
    """A map's job is shaped by its scene and model, so even a dry run reads
    them: offline, it says so at once instead of retrying for minutes."""
    from pipelines import predict_map
    from transforms.runtime import arguments

    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(arguments, "_REACHED", False)
    monkeypatch.setattr(socket, "create_connection", offline)
    started = time.time()
    rc = predict_map.main([
        "--scene_path", "gs://my-bucket/scenes/2021-06-01/",
        "--exported_model_dir", "gs://my-bucket/soil_moisture_model/",
        "--output_path", "gs://my-bucket/maps/2021-06-01.tif", "--runner", "DataflowRunner",
        "--project", "my-project", "--region", "us-central1",
        "--temp_location", "gs://my-bucket/tmp", "--dry_run=True"])
    err = capfd.readouterr().err
    assert rc == 1 and time.time() - started < 30
    assert ("predict_map: error: cannot reach Google Cloud Storage (storage.googleapis.com) for "
            "gs://my-bucket/scenes/2021-06-01/ within 5 s") in err
