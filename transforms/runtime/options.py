"""The flags several commands share, each defined once (Beam allows one
definition per flag): ``--output_dir``, ``--input_data_path``,
``--progress_seconds``, and ``add_shared_argument`` for the others."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from transforms.runtime.errors import UsageError

PUBLIC_SHARDS = ("gs://eoscience-public/soil_moisture_retrieval_data/"
                 "data-*-of-00500.tfrecord.gz")


class OutputDirOptions(PipelineOptions):
    """``--output_dir``, shared by the pipelines that write a directory.

    Beam builds its parser from the *direct* subclasses of ``PipelineOptions``
    only (``PipelineOptions.__subclasses__()``), and a flag may be defined
    once: so every options class here and in ``pipelines/`` subclasses
    ``PipelineOptions`` directly, and pipelines read this flag with
    ``options.view_as(OutputDirOptions)``. (A subclass of this class would be
    invisible to Beam's parser, which then warns that its flags are unknown.)
    """

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--output_dir", default=None,
                            help="the folder the outputs go to (local or gs://)")


def add_shared_argument(parser, flag: str, **kwargs) -> None:
    """Add ``flag`` unless another pipeline's options class already did.

    Several pipelines take the same flag with the same default (``--image_size``,
    ``--train_fraction``, ...); Beam parses every options class into one
    parser, where a flag may appear once. Defaults must agree (tested).
    """
    if flag not in parser._option_string_actions:  # argparse's registry of flags
        parser.add_argument(flag, **kwargs)


def output_dir_of(options: PipelineOptions) -> str:
    """``--output_dir``, which the command requires (else UsageError)."""
    output_dir = options.view_as(OutputDirOptions).output_dir
    if not output_dir:
        raise UsageError("--output_dir required")
    return output_dir


class ShardInputOptions(PipelineOptions):
    """``--input_data_path``, shared by the pipelines (Beam allows one definition per flag)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--input_data_path", default=PUBLIC_SHARDS,
                            help="glob of input shards, local or gs:// "
                                 "(default: the public bucket's 500 shards)")


class ProgressOptions(PipelineOptions):
    """``--progress_seconds``: how often a local run logs its progress."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--progress_seconds", type=float, default=10.0,
                            help="local runs: log a progress line this often, in seconds "
                                 "(shards or windows done, rate, ETA; default 10; 0: never)")


def add_split_fraction_arguments(parser) -> None:
    """``--train_fraction`` and ``--validation_fraction`` (train, evaluate):
    the sensor split both commands make by a hash of ``sensor_id``."""
    add_shared_argument(parser, "--train_fraction", type=float, default=0.7,
                        help="the fraction of sensors (by a hash of sensor_id) in the train split")
    add_shared_argument(parser, "--validation_fraction", type=float, default=0.15,
                        help="the fraction of sensors in the validation split (the rest: test)")


def add_image_size_argument(parser) -> None:
    """``--image_size`` (train, run_inference, predict_map): None when not
    given, so each command can settle it (a model's recorded size, or the
    release's 512)."""
    add_shared_argument(
        parser, "--image_size", type=int, default=None,
        help="image side of the examples (default: the size the model records it was trained "
             "on, model_info.json beside a model train exported; else 512, the release's)")


def add_model_arguments(parser) -> None:
    """The flags of every command that runs the model (``run_inference``,
    ``predict_map``): the model, how it is fed, and the output path, defined
    once whichever command's options come first."""
    from transforms.dataset.model_interface import INPUT_TENSORS, OUTPUT_TENSOR

    add = lambda flag, **kw: add_shared_argument(parser, flag, **kw)  # noqa: E731
    add("--output_path", default=None,
        help="where the output goes: a file prefix for run_inference's predictions; for "
             "predict_map the map's .tif, a cube's .zarr, or a folder of maps ending / "
             "(local or gs://)")
    add("--exported_model_dir", default=None,
        help="the model: a TF1 SavedModel folder (tag serve) or a frozen GraphDef .pb "
             "(local or gs://)")
    add("--batch_size", type=int, default=None,
        help="examples or windows per session.run (default 8, or 64 when the local machine "
             "has a GPU or Dataflow workers get one: a worker_accelerator service option)")
    add("--feed_whole_images", action="store_true",
        help="always feed whole images (by default only the centre window is decoded and "
             "fed when a check at load shows the model crops to it, as the released model does)")
    add_image_size_argument(parser)
    add("--image_tensor", default=INPUT_TENSORS["image"],
        help="the graph's tensor fed the Sentinel-1/2 and DEM bands [batch, H, W, 10]")
    add("--low_res_tensor", default=INPUT_TENSORS["low_res"],
        help="the graph's tensor fed the SoilGrids bands [batch, H, W, 4]")
    add("--aux_tensor", default=INPUT_TENSORS["aux"],
        help="the graph's tensor fed SMAP and GLDAS [batch, 2], each /255")
    add("--output_tensor", default=OUTPUT_TENSOR,
        help="the graph's tensor of the predictions [batch], soil moisture in m3/m3")
    add("--tensorflow_threads", type=int, default=0,
        help="TensorFlow threads per worker process (default 0: the cores divided by "
             "--direct_num_workers on a local run, else TensorFlow's own default)")


def add_ismn_arguments(parser) -> None:
    """The ISMN flags ``combine_ismn_data`` and ``validate_map`` share."""
    add_shared_argument(parser, "--ismn_data_path", default=None,
                        help="the ISMN download (CEOP format), zip or extracted folder")
    add_shared_argument(parser, "--time_tolerance_minutes", type=float, default=3.0,
                        help="readings within +- this of the example's (or map's) time "
                             "match (default 3)")
    add_shared_argument(parser, "--ismn_good_flags_only", action="store_true", default=False,
                        help="only readings flagged G count (default: all, as released)")


def add_report_arguments(parser) -> None:
    """The report flags ``evaluate`` and ``validate_map`` share."""
    def add(flag, **kwargs):
        add_shared_argument(parser, flag, **kwargs)

    add("--min_samples_per_sensor", type=int, default=10,
        help="pairs a sensor needs to count in the per-sensor averages")
    add("--timeseries_sensors", type=int, default=4,
        help="sensors plotted as series")
    add("--ci_level", type=float, default=0.95,
        help="level of every confidence interval (analytical and bootstrap)")
    add("--bootstrap_samples", type=int, default=1000,
        help="resamples of sensors for the intervals of per-sensor averages and of the "
             "paired comparison (0: none)")
    add("--bootstrap_seed", type=int, default=0, help="random seed of the bootstrap resampling")
    add("--anomaly_window_days", type=float, default=35.0,
        help="moving-average window of the anomalies (days, centred)")
