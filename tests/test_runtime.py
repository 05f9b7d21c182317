import pytest

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

import support
from transforms import runtime


def test_no_runner_means_local_fn_api_runner():
    opts = PipelineOptions([])
    runtime.apply_local_defaults(opts)
    assert opts.view_as(StandardOptions).runner == runtime.LOCAL_RUNNER
    assert "Prism" not in runtime.LOCAL_RUNNER


def test_released_num_workers_maps_to_direct_workers_locally():
    opts = PipelineOptions([])
    runtime.apply_local_defaults(opts, num_workers=4)
    d = opts.view_as(DirectOptions)
    assert (d.direct_num_workers, d.direct_running_mode) == (4, "multi_processing")


def test_explicit_direct_options_win():
    opts = PipelineOptions(["--direct_num_workers", "3"])
    runtime.apply_local_defaults(opts, num_workers=4)
    assert opts.view_as(DirectOptions).direct_num_workers == 3


def test_cluster_runner_untouched():
    opts = PipelineOptions(["--runner", "DataflowRunner", "--num_workers", "5"])
    runtime.apply_local_defaults(opts, num_workers=5)
    assert opts.view_as(StandardOptions).runner == "DataflowRunner"
    assert opts.view_as(DirectOptions).direct_num_workers in (None, 1)


def test_local_workers_share_the_cores_between_them(monkeypatch):
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 16)

    def threads(argv):
        opts = PipelineOptions(argv)
        runtime.apply_local_defaults(opts)
        return runtime.threads_per_local_worker(opts)

    assert threads([]) is None  # one worker: TensorFlow's own default
    assert threads(["--direct_num_workers", "4"]) == 4
    assert threads(["--direct_num_workers", "32"]) == 1
    assert threads(["--runner", "DataflowRunner", "--direct_num_workers", "4"]) is None


def test_every_pipeline_flag_is_known_to_beams_parser(caplog):
    """Beam parses argv with the direct subclasses of PipelineOptions only; a
    flag it does not know is dropped with a warning on every run."""
    import logging

    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines import combine_ismn_data, evaluate, run_inference, train  # noqa: F401
    argv = ["--ismn_data_path", "x.zip", "--output_dir", "o", "--match_sensor_type",
            "--predictions", "p.csv", "--split_by", "none", "--train_fraction", "0.5",
            "--exported_model_dir", "m", "--image_size", "64", "--num_inference_samples", "2",
            "--epochs", "1", "--inputs", "smap", "--input_data_path", "s/*.gz",
            "--tensorflow_threads", "2", "--patience", "3", "--resume", "--shuffle_buffer_mb", "64"]
    with caplog.at_level(logging.WARNING):
        parsed = PipelineOptions(argv).get_all_options()
    assert not [r for r in caplog.records if "nparseable" in r.getMessage()
                or "invalid overrides" in r.getMessage()]
    assert parsed["image_size"] == 64 and parsed["ismn_data_path"] == "x.zip"
    assert parsed["predictions"] == "p.csv" and parsed["train_fraction"] == 0.5
    # one --image_size for all: not given is None, settled by each command
    # (train: 512; run_inference, predict_map: the model's record, else 512)
    assert PipelineOptions([]).view_as(train.TrainOptions).image_size is None
    assert PipelineOptions([]).view_as(run_inference.RunInferenceOptions).image_size is None
    assert PipelineOptions([]).view_as(evaluate.EvaluateOptions).train_fraction == 0.7


def test_cli_main_errors_are_one_line_with_the_status_of_their_kind(capfd):
    from transforms import runtime

    def fails(exc):
        def run(argv):
            raise exc
        return run

    cases = [(runtime.UsageError("--x is wrong"), 2, "tool: error: --x is wrong"),
             (runtime.InputError("file f lacks y"), 1, "tool: error: file f lacks y"),
             (RuntimeError("deep inside\nthe last line says why"), 1,
              "tool: error: RuntimeError: the last line says why (run again with -v for the "
              "full traceback)")]
    for exc, status, line in cases:
        assert runtime.cli_main("tool", fails(exc), lambda r: 0, []) == status
        assert capfd.readouterr().err.strip().splitlines() == [line]
        with pytest.raises(type(exc)):  # -v: the traceback
            runtime.cli_main("tool", fails(exc), lambda r: 0, ["-v"])


def test_a_command_imports_with_the_collector_paused_and_runs_with_it_on():
    """``python -m pipelines.<name>`` pauses garbage collection only while its
    libraries are imported; the command itself runs with it on (else cyclic
    garbage would pile up for a whole run). Importing ``pipelines`` otherwise
    leaves the collector alone."""
    probe = ("import gc, sys\n"
             "sys.argv = ['-m']\n"
             "import pipelines\n"
             "paused = not gc.isenabled()\n"
             "from transforms.runtime import cli\n"
             "code = cli.cli_main('probe', lambda argv: gc.isenabled(), lambda on: 0 if on else 3, [])\n"
             "print(paused, code == 0)\n")
    words, err = support.fresh_python(probe)
    assert words == ["True", "True"], err
    words, err = support.fresh_python("import gc, pipelines; print(gc.isenabled())")
    assert words == ["True"], err


def test_an_output_is_compared_literally_but_for_its_star(tmp_path):
    """A folder named ``site[1]`` is that folder: its file is refused as an
    output (fnmatch read ``[1]`` as a character class and let it through)."""
    import pytest

    from transforms.runtime import UsageError, refuse_overwrite

    site = tmp_path / "site[1]"
    site.mkdir()
    band = site / "sentinel_1_VV.tif"
    band.write_bytes(b"")
    with pytest.raises(UsageError, match=r"would replace the input"):
        refuse_overwrite([str(band)], [str(band)], "--scene_path", "--output_path")
    shard = tmp_path / "p-00000-of-00002.csv"
    shard.write_bytes(b"")
    with pytest.raises(UsageError):
        refuse_overwrite([str(shard)], [str(tmp_path / "p-*-of-*.csv")], "--i", "--o")
    refuse_overwrite([str(shard)], [str(tmp_path / "q-*-of-*.csv")], "--i", "--o")
    refuse_overwrite([str(site / "sentinel_1_VH.tif")], [str(tmp_path / "site1" / "*")],
                     "--i", "--o")
