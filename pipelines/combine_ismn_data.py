"""Merge ISMN in-situ soil-moisture labels into the released dataset shards.

The Beam version of the released ``combine_ismn_data.py``: same rules, same
labels, same counters, at any scale (see ``transforms.merge`` for the design).

Locally (no ``--runner``: Beam's in-process runner, never the network)::

    python -m pipelines.combine_ismn_data \
        --input_data_path 'shards/data-*-of-00500.tfrecord.gz' \
        --ismn_data_path ~/Downloads/ISMN_2015_2022.zip \
        --output_dir merged/ \
        --direct_num_workers 8 --direct_running_mode multi_processing

On Dataflow::

    python -m pipelines.combine_ismn_data \
        --input_data_path 'gs://eoscience-public/soil_moisture_retrieval_data/data-*-of-00500.tfrecord.gz' \
        --ismn_data_path gs://my-bucket/ismn/ISMN_2015_2022.zip \
        --output_dir gs://my-bucket/soil_moisture_full/ \
        --runner DataflowRunner --project my-project --region us-central1 \
        --temp_location gs://my-bucket/tmp --setup_file ./setup.py \
        --experiments use_runner_v2 --machine_type n2-standard-4 \
        --disk_size_gb 100 --max_num_workers 50

Outputs in ``--output_dir``: one ``data-NNNNN-of-MMMMM.tfrecord.gz`` per input
shard (same name and record order; labelled examples only), ``failures.jsonl``
(one line per example not written, with shard, index, sensor_id, timestamp,
kind and reason), ``shards.jsonl`` (one report per input shard) and
``ismn_provenance.jsonl`` (which ISMN snapshot labelled the data) and
``summary.json`` (totals, provenance, shard list, elapsed time). Prints
``Total success: S, Total lookup failures: L, Total value failures: V``
exactly like the released script (S counts every example written, already
labelled ones included), then a line breaking S down. Exits 2 on a usage
error found before running (no input shards, two inputs with one file name,
an output that would replace an input), 1 if a shard could not be read to its
end or an ISMN file or the ISMN download could not be read.

The released ``--num_workers N`` is accepted: locally it means
``--direct_num_workers N --direct_running_mode multi_processing``; on Dataflow
it is Dataflow's own initial worker count.
"""

from __future__ import annotations

import sys
from typing import List, Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, WorkerOptions

from transforms import merge, runtime

from transforms.dataset import files, tfrecord_io



class CombineIsmnOptions(PipelineOptions):
    """The merge's own flags (``--output_dir`` is ``runtime.OutputDirOptions``'s)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--ismn_data_path", default=None,
                            help="the ISMN download (CEOP format), zip or extracted folder")
        parser.add_argument("--time_tolerance_minutes", type=float, default=3.0,
                            help="readings within +- this of the example time match (default 3)")
        parser.add_argument("--ismn_good_flags_only", action="store_true", default=False,
                            help="only readings flagged G count (default: all, as released)")
        parser.add_argument("--nonfinite_readings_as_value_failures", action="store_true",
                            default=False,
                            help="a NaN or infinite ISMN reading is a value failure (default: "
                                 "written as a NaN label, as the released script does, and "
                                 "counted as nonfinite_labels)")
        parser.add_argument("--match_sensor_type", action="store_true", default=False,
                            help="at a station with several 0.05 m soil-moisture sensors, use "
                                 "the one whose instrument is the sensor_id's sensor type "
                                 "(default: the released choice, the first listed)")


def build(p: beam.Pipeline, input_data_path: str, out: str, opts: CombineIsmnOptions,
          progress_dir: Optional[str] = None):
    """Add the merge to ``p``, writing into ``out``; returns the PCollections it writes."""
    shards = p | "Match shards" >> tfrecord_io.MatchShards(input_data_path)
    merged = shards | "Merge ISMN labels" >> merge.MergeIsmnLabels(
        ismn_path=opts.ismn_data_path, output_dir=out,
        time_tolerance_minutes=opts.time_tolerance_minutes,
        good_flags_only=opts.ismn_good_flags_only, match_sensor_type=opts.match_sensor_type,
        progress_dir=progress_dir,
        nonfinite_as_value_failure=opts.nonfinite_readings_as_value_failures)
    for name, pcoll in (("failures", merged["failures"]), ("shards", merged["reports"]),
                        ("ismn_provenance", merged["ismn_provenance"])):
        (pcoll
         | f"Format {name}" >> beam.Map(files.to_json_line)
         | f"Write {name}" >> beam.io.WriteToText(
             FileSystems.join(out, name), file_name_suffix=".jsonl",
             num_shards=1, shard_name_template=""))
    return merged


def check_inputs(input_data_path: str, output_dir: str, opts: CombineIsmnOptions) -> List[str]:
    """Before anything runs: the input shards (raises UsageError when none
    match, when two share a file name, or when an output would replace an
    input) and the ISMN path's existence."""
    paths = runtime.input_shards(input_data_path)
    try:
        merge.plan_outputs(paths, output_dir)
    except ValueError as e:
        raise runtime.UsageError(str(e)) from e
    if not FileSystems.exists(opts.ismn_data_path.rstrip("/")):
        raise runtime.UsageError(f"--ismn_data_path {opts.ismn_data_path} does not exist")
    if _inside(output_dir, opts.ismn_data_path):
        raise runtime.UsageError(
            f"--output_dir {output_dir} is inside the ISMN download --ismn_data_path "
            f"{opts.ismn_data_path}: its outputs would change the download (and its "
            f"provenance hash); write them elsewhere")
    return paths


def _inside(path: str, folder: str) -> bool:
    """Local ``path`` is ``folder`` or lies under it (links followed)."""
    import os

    if "://" in path or "://" in folder or not os.path.isdir(folder):
        return False
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def stale_outputs(output_dir: str, written: List[str]) -> List[str]:
    """Shards in ``output_dir`` this run did not write (an earlier run's)."""
    found = FileSystems.match([FileSystems.join(output_dir, "*.tfrecord.gz")])[0].metadata_list
    return sorted(set(m.path for m in found) - set(written))


def summarise(result, input_data_path: str, output_dir: str, opts: CombineIsmnOptions,
              seconds: float) -> dict:
    """Totals from the per-shard reports (exact), with the Beam counters beside them.

    ``success`` is the released script's ``Total success``: every example
    written, those already labelled included; ``merged_from_ismn`` and
    ``already_labelled`` break it down.
    """
    reports = sorted(files.read_json_lines(FileSystems.join(output_dir, "shards.jsonl")),
                     key=lambda r: r["path"])
    (prov,) = files.read_json_lines(
        FileSystems.join(output_dir, "ismn_provenance.jsonl")) or [{}]
    total = lambda key: sum(r[key] for r in reports)  # noqa: E731
    failures = {k: sum(r["failures"].get(k, 0) for r in reports) for k in merge.FAILURE_KINDS}
    outputs = [FileSystems.join(output_dir, r["shard"]) for r in reports]
    return {
        "success": total("written"),
        "merged_from_ismn": total("success"),
        "lookup_failures": failures["lookup"],
        "value_failures": failures["value"],
        "already_labelled": total("already_labelled"),
        "nonfinite_labels": total("nonfinite_labels"),
        "nonfinite_readings_as_value_failures": opts.nonfinite_readings_as_value_failures,
        "malformed": failures["malformed"],
        "corrupt": failures["corrupt"],
        "sensor_type_mismatch": total("sensor_type_mismatch"),
        "examples_read": total("examples_read"),
        "examples_written": total("written"),
        "accounted": all(r["accounted"] for r in reports)
                     and total("written") == total("success") + total("already_labelled"),
        "counters": runtime.counters(result, merge.NAMESPACE),
        "input_data_path": input_data_path,
        "ismn_data_path": opts.ismn_data_path,
        "ismn_provenance": prov,
        "ismn_error": prov.get("error"),
        "unreadable_ismn_files": sorted({f for r in reports for f in r["unreadable_ismn_files"]}),
        "project_version": runtime.project_version(),
        "time_tolerance_minutes": opts.time_tolerance_minutes,
        "ismn_good_flags_only": opts.ismn_good_flags_only,
        "match_sensor_type": opts.match_sensor_type,
        "shards": reports,
        "incomplete_shards": [r["path"] for r in reports if not r["complete"]],
        "stale_outputs": stale_outputs(output_dir, outputs),
        "elapsed_seconds": seconds,
    }


def run(argv: Optional[List[str]] = None, test_pipeline=None) -> dict:
    """Run the merge; returns the summary (also written to ``summary.json``)."""
    options = PipelineOptions(argv)
    opts = options.view_as(CombineIsmnOptions)
    input_data_path = options.view_as(runtime.ShardInputOptions).input_data_path
    output_dir = options.view_as(runtime.OutputDirOptions).output_dir
    missing = [flag for flag, value in (("--ismn_data_path", opts.ismn_data_path),
                                        ("--output_dir", output_dir)) if not value]
    if missing:
        raise runtime.UsageError(f"{' and '.join(missing)} required")
    if not runtime.is_dry_run(options):
        check_inputs(input_data_path, output_dir, opts)
        runtime.check_writable(output_dir, "--output_dir")
    runtime.apply_local_defaults(options, options.view_as(WorkerOptions).num_workers)
    clock = runtime.Stopwatch()
    with runtime.local_progress(options, merge.MergeIsmnLabels.STAGES, input_data_path) as progress:
        result, dry_run = runtime.run_pipeline(
            options, test_pipeline, lambda p: build(p, input_data_path, output_dir, opts, progress),
            "combine_ismn_data")
    if dry_run:
        return dry_run
    summary = summarise(result, input_data_path, output_dir, opts, clock.seconds())
    files.remove_stale_temporaries(output_dir)
    files.write_json_atomically(FileSystems.join(output_dir, "summary.json"), summary)
    print(f"Total success: {summary['success']}, "
          f"Total lookup failures: {summary['lookup_failures']}, "
          f"Total value failures: {summary['value_failures']}")
    print(f"Success = {summary['already_labelled']} already labelled + "
          f"{summary['merged_from_ismn']} merged from ISMN ({summary['nonfinite_labels']} of "
          f"them NaN or infinite readings); examples read: "
          f"{summary['examples_read']}, malformed: {summary['malformed']}, "
          f"corrupt shards: {summary['corrupt']}, ambiguous stations: "
          f"{summary['counters'].get('ambiguous_station', 0)}, labels from a sensor of "
          f"another type: {summary['sensor_type_mismatch']}; "
          f"{summary['elapsed_seconds']:.1f} s. Details: "
          f"{FileSystems.join(output_dir, 'summary.json')}")
    for path in summary["incomplete_shards"]:
        print(f"ERROR: shard {path} could not be read to its end (see failures.jsonl)",
              file=sys.stderr)
    if summary["ismn_error"]:
        print(f"ERROR: {summary['ismn_error']}", file=sys.stderr)
    for path in summary["unreadable_ismn_files"]:
        print(f"ERROR: ISMN file {path} could not be read; the examples that need it are "
              f"lookup failures (see failures.jsonl)", file=sys.stderr)
    if summary["stale_outputs"]:
        print(f"NOTE: {len(summary['stale_outputs'])} shards in {output_dir} are not from "
              f"this run (listed as stale_outputs in summary.json)", file=sys.stderr)
    return summary


def exit_code(summary: dict) -> int:
    if summary.get("dry_run"):
        return 0
    bad = (summary["incomplete_shards"] or summary["ismn_error"]
           or summary["unreadable_ismn_files"])
    return 1 if bad or not summary["accounted"] else 0


def main(argv: Optional[List[str]] = None) -> int:
    return runtime.cli_main(
        "combine_ismn_data", run, exit_code, argv,
        option_classes=(runtime.ShardInputOptions, runtime.OutputDirOptions, CombineIsmnOptions,
                        runtime.ProgressOptions),
        description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
