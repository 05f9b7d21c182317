"""The merge's results: the summary of a run, its printed lines and exit status."""

from __future__ import annotations

from typing import Dict, List

from apache_beam.io.filesystems import FileSystems

from transforms import runtime
from transforms.dataset import files
from transforms.merge.accounting import FAILURE_KINDS, NAMESPACE
from transforms.merge.config import MergeConfig


def stale_outputs(output_dir: str, written: List[str]) -> List[str]:
    """Shards in ``output_dir`` this run did not write (an earlier run's).

    Args:
        output_dir: the merge's output folder.
        written: the shard paths this run wrote.

    Returns:
        The other ``*.tfrecord.gz`` paths there, sorted.
    """
    found = FileSystems.match([FileSystems.join(output_dir, "*.tfrecord.gz")])[0].metadata_list
    return sorted(set(m.path for m in found) - set(written))


def summarise(result, config: MergeConfig, seconds: float) -> Dict[str, object]:
    """Totals from the per-shard reports (exact), with the Beam counters beside them.

    Args:
        result: the finished pipeline's result (for its counters).
        config: the run's settings.
        seconds: how long the run took.

    Returns:
        The summary (``summary.json``): ``success`` is the released script's
        ``Total success``, every example written, those already labelled
        included; ``merged_from_ismn`` and ``already_labelled`` break it
        down; ``accounted`` says every record read is written or a failure.
    """
    output_dir = config.output_dir
    reports = sorted(files.read_json_lines(FileSystems.join(output_dir, "shards.jsonl")),
                     key=lambda r: r["path"])
    (prov,) = files.read_json_lines(
        FileSystems.join(output_dir, "ismn_provenance.jsonl")) or [{}]
    total = lambda key: sum(r[key] for r in reports)  # noqa: E731
    failures = {k: sum(r["failures"].get(k, 0) for r in reports) for k in FAILURE_KINDS}
    outputs = [FileSystems.join(output_dir, r["shard"]) for r in reports]
    return {
        "success": total("written"),
        "merged_from_ismn": total("success"),
        "lookup_failures": failures["lookup"],
        "value_failures": failures["value"],
        "already_labelled": total("already_labelled"),
        "nonfinite_labels": total("nonfinite_labels"),
        "nonfinite_readings_as_value_failures": config.nonfinite_readings_as_value_failures,
        "malformed": failures["malformed"],
        "corrupt": failures["corrupt"],
        "sensor_type_mismatch": total("sensor_type_mismatch"),
        "examples_read": total("examples_read"),
        "examples_written": total("written"),
        "accounted": all(r["accounted"] for r in reports)
                     and total("written") == total("success") + total("already_labelled"),
        "counters": runtime.counters(result, NAMESPACE),
        "input_data_path": config.input_data_path,
        "ismn_data_path": config.ismn_data_path,
        "ismn_provenance": prov,
        "ismn_error": prov.get("error"),
        "unreadable_ismn_files": sorted({f for r in reports for f in r["unreadable_ismn_files"]}),
        "project_version": runtime.project_version(),
        "time_tolerance_minutes": config.time_tolerance_minutes,
        "ismn_good_flags_only": config.ismn_good_flags_only,
        "match_sensor_type": config.match_sensor_type,
        "shards": reports,
        "incomplete_shards": [r["path"] for r in reports if not r["complete"]],
        "stale_outputs": stale_outputs(output_dir, outputs),
        "elapsed_seconds": seconds,
    }


def summary_lines(summary: Dict[str, object], output_dir: str):
    """What a finished merge prints.

    Args:
        summary: ``summarise``'s summary.
        output_dir: the merge's output folder (named in the lines).

    Returns:
        ``(stdout lines, stderr lines)``: the released script's totals line
        and the breakdown, then one line per problem.
    """
    out = [f"Total success: {summary['success']}, "
           f"Total lookup failures: {summary['lookup_failures']}, "
           f"Total value failures: {summary['value_failures']}",
           f"Success = {summary['already_labelled']} already labelled + "
           f"{summary['merged_from_ismn']} merged from ISMN ({summary['nonfinite_labels']} of "
           f"them NaN or infinite readings); examples read: "
           f"{summary['examples_read']}, malformed: {summary['malformed']}, "
           f"corrupt shards: {summary['corrupt']}, ambiguous stations: "
           f"{summary['counters'].get('ambiguous_station', 0)}, labels from a sensor of "
           f"another type: {summary['sensor_type_mismatch']}; "
           f"{summary['elapsed_seconds']:.1f} s. Details: "
           f"{FileSystems.join(output_dir, 'summary.json')}"]
    err = [f"ERROR: shard {path} could not be read to its end (see failures.jsonl)"
           for path in summary["incomplete_shards"]]
    if summary["ismn_error"]:
        err.append(f"ERROR: {summary['ismn_error']}")
    err += [f"ERROR: ISMN file {path} could not be read; the examples that need it are "
            f"lookup failures (see failures.jsonl)" for path in summary["unreadable_ismn_files"]]
    if summary["stale_outputs"]:
        err.append(f"NOTE: {len(summary['stale_outputs'])} shards in {output_dir} are not from "
                   f"this run (listed as stale_outputs in summary.json)")
    return out, err


def exit_code(summary: Dict[str, object]) -> int:
    """The merge's exit status.

    Args:
        summary: ``summarise``'s summary (or a dry run's report).

    Returns:
        0, or 1 when a shard could not be read to its end, the ISMN download
        or one of its files could not be read, or the counts do not add up.
    """
    if summary.get("dry_run"):
        return 0
    bad = (summary["incomplete_shards"] or summary["ismn_error"]
           or summary["unreadable_ismn_files"])
    return 1 if bad or not summary["accounted"] else 0
