"""Runner defaults, metrics and summary helpers shared by the pipelines.

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
import json
import logging
import tempfile
import time
import uuid
from typing import Callable, Dict, List, Optional

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import (DirectOptions, PipelineOptions, StandardOptions,
                                                  TestOptions)

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


class ShardInputOptions(PipelineOptions):
    """``--input_data_path``, shared by the pipelines (Beam allows one definition per flag)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--input_data_path", default=PUBLIC_SHARDS,
                            help="glob of input shards, local or gs:// "
                                 "(default: the public bucket's 500 shards)")
_LOG = logging.getLogger(__name__)


class UsageError(Exception):
    """A flag or path the user can fix before anything runs (exit status 2)."""


class InputError(Exception):
    """Input found unusable before the run starts (exit status 1)."""


BEAM_OPTIONS_HELP = (
    "Beam options: standard Beam flags are accepted as well (--runner, --project, --region, "
    "--temp_location, --setup_file, --sdk_container_image, --direct_num_workers, "
    "--direct_running_mode, ...): see https://beam.apache.org/documentation/#runners and "
    "the README's 'Running on a cluster'. --help_beam lists all of them.\n"
    "-v / --verbose: show Beam's and TensorFlow's own log messages and tracebacks.")


def pipeline_help(name: str, description: str, option_classes) -> str:
    """``--help`` text: the pipeline's own flags with defaults, then a pointer to Beam's."""
    import argparse

    class Formatter(argparse.ArgumentDefaultsHelpFormatter):
        def _get_help_string(self, action):  # a help text naming its default is kept as is
            text = action.help or ""
            return text if "default" in text else super()._get_help_string(action)

    parser = argparse.ArgumentParser(
        prog=f"python -m pipelines.{name}", description=description, add_help=False,
        formatter_class=Formatter)
    group = parser.add_argument_group(f"{name} flags")
    for cls in option_classes:
        cls._add_argparse_args(group)
    return parser.format_help() + "\n" + BEAM_OPTIONS_HELP


def cli_main(name: str, run: Callable, exit_code: Callable, argv: Optional[List[str]] = None,
             option_classes=(), description: str = "") -> int:
    """Run ``run(argv)`` as a command: exit status ``exit_code(result)``.

    A ``UsageError`` is one line on stderr and status 2, an ``InputError``
    one line and status 1. Our own progress lines are logged at INFO; Beam's
    and TensorFlow's Python loggers only show errors unless ``-v`` (or
    ``--verbose``) is given, which also shows tracebacks of those errors.
    """
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(argv):
        print(pipeline_help(name, description, option_classes))
        return 0
    if "--help_beam" in argv:
        PipelineOptions(["--help"])
    verbose = bool({"-v", "--verbose"} & set(argv))
    argv = [a for a in argv if a not in ("-v", "--verbose")]
    native = None if verbose else NativeStderrFilter().start()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    filtered = [] if verbose else list(logging.getLogger().handlers)
    for handler in filtered:
        handler.addFilter(_ours_or_errors)
    try:
        return exit_code(run(argv))
    except (UsageError, InputError) as e:
        if verbose:
            raise
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, UsageError) else 1
    except Exception as e:  # a failure inside the run: one line, the traceback with -v
        if verbose:
            raise
        lines = [line for line in str(e).splitlines() if line.strip()] or [""]
        print(f"{name}: error: {type(e).__name__}: {lines[-1][:500]} "
              f"(run again with -v for the full traceback)", file=sys.stderr)
        return 1
    finally:
        for handler in filtered:
            handler.removeFilter(_ours_or_errors)
        if native is not None:
            native.stop()


_OWN_LOGGERS = ("transforms", "pipelines", "model_runner", "__main__")


def _ours_or_errors(record: logging.LogRecord) -> bool:
    """Our own log records at any level; other libraries' (Beam, TensorFlow,
    and those logging on the root logger) only from ERROR up."""
    return record.name.startswith(_OWN_LOGGERS) or record.levelno >= logging.ERROR


class NativeStderrFilter:
    """Drops the start-up chatter native libraries write straight to file
    descriptor 2 (TensorFlow's absl INFO/WARNING lines, its "All log messages
    before absl::InitializeLog()" notice, CUDA probing errors on machines
    without a GPU), which ``TF_CPP_MIN_LOG_LEVEL`` no longer silences before
    absl logging is initialised. Everything else is passed on unchanged.

    Python's own ``sys.stderr`` keeps writing to the real stderr; only native
    writes (and worker subprocesses, which inherit the descriptor) go through
    the filter thread.
    """

    import re as _re
    DROP = _re.compile(
        rb"^(WARNING: All log messages before absl::InitializeLog\(\)"
        rb"|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] "
        rb"|E\d{4} [\d:.]+ +\d+ \S+:\d+\] .*(cuInit|CUDA|cuda|Unable to register cu))")

    def start(self) -> "NativeStderrFilter":
        import os
        import sys
        import threading

        sys.stderr.flush()
        self._saved = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._python_stderr = sys.stderr
        sys.stderr = open(os.dup(self._saved), "w", buffering=1, closefd=True)
        self._reader = os.fdopen(read_fd, "rb")
        self._thread = threading.Thread(target=self._pump, name="stderr-filter", daemon=True)
        self._thread.start()
        return self

    def _pump(self) -> None:
        import os

        for line in self._reader:
            if not self.DROP.match(line):
                os.write(self._saved, line)

    def stop(self) -> None:
        import os
        import sys

        sys.stderr.flush()
        os.dup2(self._saved, 2)  # closes the pipe's last write end: the pump sees its end
        self._thread.join(timeout=5)
        sys.stderr.close()
        sys.stderr = self._python_stderr


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
    progress lines (see ``transforms.runtime.progress``)."""
    from transforms.runtime.progress import ProgressReporter

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


def write_bytes_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary name and a rename."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)
    FileSystems.rename([tmp], [path])


def write_json_atomically(path: str, payload) -> None:
    write_bytes_atomically(path, json.dumps(payload, indent=2, sort_keys=True).encode())


def read_json_lines(path: str) -> List[dict]:
    if not FileSystems.exists(path):
        return []
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]


class Stopwatch:
    def __init__(self):
        self.start = time.time()

    def seconds(self) -> float:
        return round(time.time() - self.start, 3)


def input_shards(pattern: str) -> List[str]:
    """The shards ``--input_data_path`` matches, sorted; none is a UsageError."""
    from transforms.dataset import tfrecord_io

    try:
        return tfrecord_io.match_input_shards(pattern)
    except FileNotFoundError as e:
        raise UsageError(f"{e}: check --input_data_path") from e


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


def remove_stale_temporaries(output_dir: str) -> None:
    """Delete what crashed or killed attempts left in ``output_dir``: the
    ``*.tmp-*`` files of our atomic writers and the ``beam-temp-*`` folders of
    Beam's file sinks.

    Only after a successful run: every final file has been renamed into place
    by then, so what is left is debris from attempts that died mid-write.
    """
    import os
    import shutil

    patterns = [FileSystems.join(output_dir, p) for p in ("*.tmp-*", "beam-temp-*/*")]
    stale = [m.path for found in FileSystems.match(patterns) for m in found.metadata_list]
    if stale:
        _LOG.info("removing %d temporary files left by failed attempts: %s", len(stale), stale)
        FileSystems.delete(stale)
    if "://" not in output_dir and os.path.isdir(output_dir):  # local folders outlive their files
        for entry in os.listdir(output_dir):
            if entry.startswith("beam-temp-"):
                shutil.rmtree(os.path.join(output_dir, entry), ignore_errors=True)
