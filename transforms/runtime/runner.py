"""Runner options, defaults and metrics shared by the pipelines.

``LOCAL_RUNNER``: with no ``--runner``, pipelines run on Beam's FnApiRunner,
the in-process engine behind the DirectRunner. We name it directly because
Beam 2.77's ``DirectRunner`` first tries the Prism runner, which downloads a
binary from the internet. ``--direct_num_workers`` and
``--direct_running_mode`` (``in_memory``, ``multi_threading``,
``multi_processing``) apply to it as usual. Any other ``--runner``
(``DataflowRunner``, ``FlinkRunner``, ``PortableRunner``, ``DirectRunner``)
is used as given.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from typing import Callable, Dict, List, Optional

from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import (DirectOptions, PipelineOptions, StandardOptions,
                                                  TestOptions)

from transforms.runtime.arguments import check_reachable
from transforms.runtime.errors import InputError, UsageError

LOCAL_RUNNER = "apache_beam.runners.portability.fn_api_runner.FnApiRunner"
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
        parser.add_argument("--output_dir", default=None, help="where outputs go (local or gs://)")


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
_LOG = logging.getLogger(__name__)


class ProgressOptions(PipelineOptions):
    """``--progress_seconds``: how often a local run logs its progress."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--progress_seconds", type=float, default=10.0,
                            help="local runs: log shards done, examples, MB/s and ETA this "
                                 "often (default 10; 0: never)")


LOCAL_RUNNERS = (LOCAL_RUNNER, "DirectRunner", "FnApiRunner", "BundleBasedDirectRunner")


def is_local(options: PipelineOptions) -> bool:
    return options.view_as(StandardOptions).runner in (None, *LOCAL_RUNNERS)


@contextlib.contextmanager
def local_progress(options: PipelineOptions, stages, input_pattern: str):
    """Yields the folder local DoFns report progress into (None when not a
    local run, a dry run, or ``--progress_seconds 0``), while a thread logs
    progress lines (see ``transforms.dataset.progress``)."""
    from transforms.dataset.progress import ProgressReporter

    interval = options.view_as(ProgressOptions).progress_seconds
    if not is_local(options) or is_dry_run(options) or interval <= 0:
        yield None
        return
    shards = FileSystems.match([input_pattern])[0].metadata_list
    with tempfile.TemporaryDirectory(prefix="progress-") as folder:
        with ProgressReporter(folder, stages, len(shards),
                              sum(m.size_in_bytes for m in shards), interval) as reporter:
            yield folder
        _LOG.info("%s", reporter.line())


def apply_local_defaults(options: PipelineOptions, num_workers: Optional[int] = None) -> None:
    """Use ``LOCAL_RUNNER`` when no runner is given.

    ``num_workers`` (the released scripts' ``--num_workers``) becomes
    ``--direct_num_workers`` with ``multi_processing`` for a local run when
    ``--direct_num_workers`` is not given.
    """
    std = options.view_as(StandardOptions)
    if std.runner is None:
        std.runner = LOCAL_RUNNER
    local = std.runner in LOCAL_RUNNERS
    direct = options.view_as(DirectOptions)
    if local and num_workers and direct.direct_num_workers in (None, 1):
        direct.direct_num_workers = num_workers
        direct.direct_running_mode = "multi_processing"


def threads_per_local_worker(options: PipelineOptions) -> Optional[int]:
    """The cores each local worker process may use (``cpu_count // --direct_num_workers``),
    or None (one worker, or not a local run: each library's own default)."""
    import os

    workers = options.view_as(DirectOptions).direct_num_workers or 1
    if not is_local(options) or workers <= 1:
        return None
    return max(1, (os.cpu_count() or 1) // workers)


def is_dry_run(options: PipelineOptions) -> bool:
    """``--dry_run``: the runner builds the job (e.g. Dataflow's) and returns at once."""
    return bool(options.view_as(TestOptions).dry_run)


def dry_run_report(result, name: str) -> dict:
    """What a dry run built: the job's transforms, printed and returned."""
    job = getattr(result, "job", None)
    proto = getattr(job, "proto_pipeline", None)
    names = sorted(t.unique_name for t in proto.components.transforms.values()) if proto else []
    print(f"{name}: dry run, job built with {len(names)} transforms and not submitted")
    return {"dry_run": True, "job": job, "transforms": names}


def run_pipeline(options: PipelineOptions, test_pipeline, build: Callable, name: str):
    """Build the pipeline with ``build(p)`` and run it to the end.

    Returns ``(result, None)``, or ``(None, report)`` for a ``--dry_run`` (the
    job was built, e.g. Dataflow's, and not submitted: nothing to summarise).
    ``test_pipeline`` (a ``TestPipeline``) replaces the pipeline made from
    ``options`` in tests.
    """
    import apache_beam as beam

    p = test_pipeline if test_pipeline is not None else beam.Pipeline(options=options)
    build(p)
    result = p.run()
    result.wait_until_finish()
    if is_dry_run(options):
        return None, dry_run_report(result, name)
    return result, None


def counters(result, namespace: str) -> Dict[str, int]:
    """Committed (else attempted) counter values of ``namespace``, by name."""
    out: Dict[str, int] = {}
    try:
        query = result.metrics().query(MetricsFilter().with_namespace(namespace))
    except Exception as e:  # a runner without metrics (e.g. a dry run)
        _LOG.warning("no metrics from the runner: %s", e)
        return out
    for c in query["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(value or 0)
    return out


class Stopwatch:
    def __init__(self):
        self.start = time.time()

    def seconds(self) -> float:
        return round(time.time() - self.start, 3)


def input_shards(pattern: str) -> List[str]:
    """The shards ``--input_data_path`` matches, sorted. None, or a folder
    instead of a glob, is a UsageError; a matched path that cannot be opened
    an InputError."""
    from transforms.dataset import tfrecord_io
    if pattern.startswith("gs://"):
        check_reachable([pattern])
    try:
        return tfrecord_io.match_input_shards(pattern)
    except IsADirectoryError as e:
        raise UsageError(f"--input_data_path {e}") from e
    except FileNotFoundError as e:
        raise UsageError(f"{e}: check --input_data_path") from e
    except tfrecord_io.UnreadableShardError as e:
        raise InputError(str(e)) from e


def refuse_overwrite(inputs: List[str], outputs: List[str], input_flag: str,
                     output_flag: str) -> None:
    """Raise UsageError naming both when an input file is one a run would
    write: ``outputs`` are the run's output paths or globs (``*`` also
    matches ``/``); local paths are compared resolved, links followed."""
    import fnmatch
    import os

    def resolved(path: str) -> str:
        if "://" in path:
            return path
        folder, name = os.path.split(os.path.abspath(path))
        return os.path.join(os.path.realpath(folder), name)

    for path in inputs:
        real = path if "://" in path else os.path.realpath(path)
        for pattern in outputs:
            if fnmatch.fnmatchcase(real, resolved(pattern)) or fnmatch.fnmatchcase(
                    resolved(path), resolved(pattern)):
                raise UsageError(f"{output_flag}: its output {pattern} would replace the input "
                                 f"{path} ({input_flag}): write the outputs elsewhere")


def check_image_size(path: str, image_size: int) -> None:
    """Fail fast (InputError) when the first example of shard ``path`` is not
    ``image_size`` square, naming both sizes and the flag to give."""
    from transforms.dataset import records, tfrecord_io

    try:
        record = next(iter(tfrecord_io.read_shard(path)), None)
        side = None if record is None else records.image_side(record)
    except (tfrecord_io.CorruptShardError, ValueError):
        return  # reported per record by the run itself
    if side is not None and side != image_size:
        raise InputError(
            f"the examples of {path} are {side}x{side} but --image_size is {image_size}: "
            f"run with --image_size {side}")


def check_writable(folder: str, flag: str) -> None:
    """A local output folder can be created and written (else UsageError
    naming ``flag``); remote ones are checked by the runner when it writes."""
    import os

    if not folder or "://" in folder:
        return
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as e:
        raise UsageError(f"cannot write to {flag} {folder}: {e.strerror or e}") from e


def project_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("soil-moisture-pipelines")
    except metadata.PackageNotFoundError:  # run from a checkout without installing
        return "unknown"


