"""What a user reads: --help, quiet valid runs, one-line errors with the right exit status."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(module, argv):
    proc = subprocess.run([sys.executable, "-m", f"pipelines.{module}", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("module,own_flag", [
    ("combine_ismn_data", "--ismn_data_path"), ("run_inference", "--exported_model_dir"),
    ("evaluate", "--predictions"), ("train", "--epochs")])
def test_help_lists_own_flags_with_defaults_then_points_to_beam(module, own_flag):
    rc, stdout, _ = run_cli(module, ["--help"])
    assert rc == 0
    assert own_flag in stdout and "--input_data_path" in stdout and "(default:" in stdout
    assert "Beam options" in stdout and "--help_beam" in stdout
    assert "--dataflow_service_options" not in stdout  # not hundreds of runner flags
    assert len(stdout.splitlines()) < 80


def noisy_lines(stdout, stderr):
    """Warnings and native log chatter a valid run should not print."""
    return [line for line in (stdout + stderr).splitlines()
            if "WARNING" in line or "Warning" in line or line.startswith(("I0000", "W0000", "E0000"))]


def test_valid_merge_prints_no_warning(sample_ceop_zip, tmp_path):
    rc, stdout, stderr = run_cli("combine_ismn_data", [
        "--input_data_path", sample_ceop_zip.shards_glob, "--ismn_data_path",
        sample_ceop_zip.ismn_path, "--output_dir", str(tmp_path / "out"),
        "--direct_num_workers", "2", "--direct_running_mode", "multi_processing"])
    assert rc == 0, stderr[-2000:]
    assert noisy_lines(stdout, stderr) == []


def test_valid_inference_prints_no_warning(sample_ceop_zip, tmp_path):
    from model_runner import export_reference_model

    model = str(tmp_path / "model")
    export_reference_model.export(model, seed=1, frozen=False)
    rc, stdout, stderr = run_cli("run_inference", [
        "--input_data_path", sample_ceop_zip.shards_glob, "--exported_model_dir", model,
        "--image_size", "16", "--output_path", str(tmp_path / "p")])
    assert rc == 0, stderr[-2000:]
    assert noisy_lines(stdout, stderr) == []
    # -v shows Beam's own messages again
    rc, _, stderr_v = run_cli("run_inference", [
        "--input_data_path", sample_ceop_zip.shards_glob, "--exported_model_dir", model,
        "--image_size", "16", "--output_path", str(tmp_path / "q"), "-v"])
    assert rc == 0 and len(stderr_v.splitlines()) > len(stderr.splitlines())


def test_valid_training_prints_no_warning(sample_ceop_zip, tmp_path):
    rc, stdout, stderr = run_cli("train", [
        "--input_data_path", sample_ceop_zip.shards_glob, "--output_dir", str(tmp_path / "t"),
        "--image_size", "16", "--epochs", "2"])
    assert rc == 0, stderr[-2000:]
    assert noisy_lines(stdout, stderr) == []


def test_missing_model_is_a_usage_error_and_a_wrong_tensor_names_the_placeholders(
        sample_ceop_zip, tmp_path):
    from model_runner import export_reference_model

    base = ["--input_data_path", sample_ceop_zip.shards_glob, "--image_size", "16",
            "--output_path", str(tmp_path / "p")]
    rc, _, stderr = run_cli("run_inference", base + ["--exported_model_dir", str(tmp_path / "no")])
    assert rc == 2 and stderr.strip() == (
        f"run_inference: error: --exported_model_dir {tmp_path / 'no'} does not exist")
    model = str(tmp_path / "model")
    export_reference_model.export(model, seed=1, frozen=True)
    for path in (model, os.path.join(model, export_reference_model.FROZEN_NAME)):
        rc, _, stderr = run_cli("run_inference", base + ["--exported_model_dir", path,
                                                         "--image_tensor", "Image:0"])
        assert rc == 1
        (line,) = stderr.strip().splitlines()
        assert "'Image:0' (image) is not in the graph" in line and "ImageTensor:0" in line


@pytest.mark.parametrize("module", ["combine_ismn_data", "evaluate"])
def test_output_dir_that_cannot_be_written_is_a_usage_error(sample_ceop_zip, tmp_path, module):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    argv = ["--output_dir", str(blocker / "out")]
    if module == "combine_ismn_data":
        argv += ["--input_data_path", sample_ceop_zip.shards_glob,
                 "--ismn_data_path", sample_ceop_zip.ismn_path]
    else:
        argv += ["--input_data_path", sample_ceop_zip.shards_glob]
    rc, _, stderr = run_cli(module, argv)
    assert rc == 2
    assert stderr.strip() == f"{module}: error: cannot write to --output_dir {blocker / 'out'}: Not a directory"
