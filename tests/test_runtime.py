from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

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
