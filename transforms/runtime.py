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

import json
import logging
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not verbose:
        for noisy in ("apache_beam", "tensorflow", "absl", "tfx_bsl", "tensorflow_transform"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        return exit_code(run(argv))
    except (UsageError, InputError) as e:
        if verbose:
            raise
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, UsageError) else 1


def apply_local_defaults(options: PipelineOptions, num_workers: Optional[int] = None) -> None:
    """Use ``LOCAL_RUNNER`` when no runner is given.

    ``num_workers`` (the released scripts' ``--num_workers``) becomes
    ``--direct_num_workers`` with ``multi_processing`` for a local run when
    ``--direct_num_workers`` is not given.
    """
    std = options.view_as(StandardOptions)
    if std.runner is None:
        std.runner = LOCAL_RUNNER
    local = std.runner in (LOCAL_RUNNER, "DirectRunner", "FnApiRunner", "BundleBasedDirectRunner")
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


def project_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("soil-moisture-pipelines")
    except metadata.PackageNotFoundError:  # run from a checkout without installing
        return "unknown"


def remove_beam_temp_dirs(output_dir: str) -> None:
    """Delete the ``beam-temp-*`` folders Beam's file sinks leave when a run is
    killed; called after a successful run, when none is in use."""
    import os

    pattern = FileSystems.join(output_dir, "beam-temp-*")
    found = FileSystems.match([FileSystems.join(pattern, "*")])[0].metadata_list
    if found:
        _LOG.info("removing %d files of killed runs' beam-temp folders", len(found))
        FileSystems.delete([m.path for m in found])
    if "://" not in output_dir and os.path.isdir(output_dir):
        import shutil
        for entry in os.listdir(output_dir):
            if entry.startswith("beam-temp-"):
                shutil.rmtree(os.path.join(output_dir, entry), ignore_errors=True)


def remove_stale_temporaries(output_dir: str) -> None:
    """Delete ``*.tmp-*`` files a crashed or retried writer left in ``output_dir``.

    Only after a successful run: every final file has been renamed into place
    by then, so what is left is debris from attempts that died mid-write.
    """
    pattern = FileSystems.join(output_dir, "*.tmp-*")
    stale = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    if stale:
        _LOG.info("removing %d temporary files left by failed attempts: %s", len(stale), stale)
        FileSystems.delete(stale)
