"""How a pipeline runs: the runner and its local defaults, progress, dry runs, counters.

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
from typing import Callable, Dict, Optional

from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import (DirectOptions, PipelineOptions, StandardOptions,
                                                  TestOptions)

from transforms.runtime.errors import UsageError
from transforms.runtime.options import ProgressOptions
LOCAL_RUNNER = "apache_beam.runners.portability.fn_api_runner.FnApiRunner"
_LOG = logging.getLogger(__name__)


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


def remote_gpu(options: PipelineOptions) -> bool:
    """Whether Dataflow workers get an accelerator (a ``worker_accelerator``
    service option)."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions

    service = options.view_as(GoogleCloudOptions).dataflow_service_options or []
    return any(o.startswith("worker_accelerator") for o in service)


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
    Raises UsageError for a ``--dry_run`` on the local runner (which would
    run the pipeline, not only build it).
    ``test_pipeline`` (a ``TestPipeline``) replaces the pipeline made from
    ``options`` in tests.
    """
    import apache_beam as beam

    if is_dry_run(options) and test_pipeline is None and is_local(options):
        raise UsageError("--dry_run builds a job for a cluster runner (e.g. --runner "
                         "DataflowRunner) without submitting it; the local runner would run it")
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
    """Wall time since it was made: ``Stopwatch().seconds()``."""

    def __init__(self):
        self.start = time.time()

    def seconds(self) -> float:
        """Seconds since the stopwatch was made, to the millisecond."""
        return round(time.time() - self.start, 3)


def project_version() -> str:
    """This package's installed version ("unknown" from a bare checkout)."""
    from importlib import metadata

    try:
        return metadata.version("soil-moisture-pipelines")
    except metadata.PackageNotFoundError:  # run from a checkout without installing
        return "unknown"
