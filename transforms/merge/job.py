"""The merge as one call: check the inputs, run the pipeline, summarise.

``run_merge`` is what ``pipelines.combine_ismn_data`` calls with its
``MergeConfig``; ``build`` adds the merge and its report files to a pipeline.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms import runtime
from transforms.dataset import files, tfrecord_io
from transforms.dataset.failures import Failure
from transforms.merge.accounting import NAMESPACE, ShardReport
from transforms.merge.config import MergeConfig
from transforms.merge.pipeline import MergeIsmnLabels
from transforms.merge.rewrite import plan_outputs
from transforms.merge.summary import summarise


def build(p: beam.Pipeline, config: MergeConfig, progress_dir: Optional[str] = None):
    """Add the merge to ``p``: merged shards, ``failures.jsonl``,
    ``shards.jsonl`` and ``ismn_provenance.jsonl`` in ``config.output_dir``.

    Args:
        p: the pipeline to add the merge to.
        config: the merge's settings.
        progress_dir: where local runs report progress (None: nowhere).

    Returns:
        The merge's PCollections (``MergeIsmnLabels``).
    """
    out = config.output_dir
    shards = p | "Match shards" >> tfrecord_io.MatchShards(config.input_data_path)
    merged = shards | "Merge ISMN labels" >> MergeIsmnLabels(config, progress_dir)
    for name, pcoll, to_json in (("failures", merged["failures"], Failure.to_json),
                                 ("shards", merged["reports"], ShardReport.to_json),
                                 ("ismn_provenance", merged["ismn_provenance"], files.to_json_line)):
        (pcoll
         | f"Format {name}" >> beam.Map(to_json)
         | f"Write {name}" >> beam.io.WriteToText(
             FileSystems.join(out, name), file_name_suffix=".jsonl",
             num_shards=1, shard_name_template=""))
    return merged



def check_inputs(config: MergeConfig) -> List[str]:
    """Before anything runs: the input shards and the ISMN download.

    Args:
        config: the merge's settings (``input_data_path``, ``ismn_data_path``,
            ``output_dir``).

    Returns:
        The input shard paths, sorted.

    Raises:
        UsageError: no shard matches, two share a file name, an output would
            replace an input, the ISMN path does not exist, or the output
            folder lies inside the ISMN download.
        InputError: a matched shard cannot be opened.
    """
    paths = runtime.input_shards(config.input_data_path)
    try:
        plan_outputs(paths, config.output_dir)
    except ValueError as e:
        raise runtime.UsageError(str(e)) from e
    if not FileSystems.exists(config.ismn_data_path.rstrip("/")):
        raise runtime.UsageError(f"--ismn_data_path {config.ismn_data_path} does not exist")
    if runtime.is_inside(config.output_dir, config.ismn_data_path):
        raise runtime.UsageError(
            f"--output_dir {config.output_dir} is inside the ISMN download --ismn_data_path "
            f"{config.ismn_data_path}: its outputs would change the download (and its "
            f"provenance hash); write them elsewhere")
    return paths


def run_merge(config: MergeConfig, options, test_pipeline=None) -> Dict[str, object]:
    """Run the merge of ``config`` with Beam ``options``.

    Args:
        config: the merge's settings.
        options: the command's parsed ``PipelineOptions`` (runner, workers).
        test_pipeline: a ``TestPipeline`` to run on instead (tests).

    Returns:
        The summary (also written to ``summary.json``; see ``summarise``),
        or a dry run's report (``dry_run``: True).

    Raises:
        UsageError, InputError: see ``check_inputs``; an output folder that
            cannot be written.
    """
    if not runtime.is_dry_run(options):
        check_inputs(config)
        runtime.check_writable(config.output_dir, "--output_dir")
    runtime.apply_local_defaults(options, config.num_workers)
    clock = runtime.Stopwatch()
    with runtime.local_progress(options, MergeIsmnLabels.STAGES,
                                config.input_data_path) as progress:
        result, dry_run = runtime.run_pipeline(
            options, test_pipeline, lambda p: build(p, config, progress), NAMESPACE)
    if dry_run:
        return dry_run
    summary = summarise(result, config, clock.seconds())
    files.remove_stale_temporaries(config.output_dir)
    files.write_json_atomically(FileSystems.join(config.output_dir, "summary.json"), summary)
    return summary
