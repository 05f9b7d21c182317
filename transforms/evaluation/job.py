"""Evaluation as one call: check the inputs, run the pipeline, read back
the report, with its printed lines and exit status."""

from __future__ import annotations

import json
import typing
from typing import Dict, List

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms import runtime
from transforms.dataset import files
from transforms.dataset.splits import SplitConfig
from transforms.evaluation.config import EvaluationConfig
from transforms.evaluation.duplicates import DropDuplicateRows
from transforms.evaluation.inputs import (BAD_ROW_KINDS, BASELINES, NAMESPACE, CheckRowsFn,
                                          without_baselines)
from transforms.evaluation.pipeline import Evaluate
from transforms.evaluation.report import empty_time_splits
from transforms.evaluation.report_files import REPORT_FILES, stale_report_files
from transforms.evaluation.sources import ReadPredictionRows, check_prediction_files

#: how ``report_lines`` words each kind of row left out
BAD_ROW_WORDS = {"unparseable": "could not be parsed",
                 "nonfinite": "hold a NaN or infinite label or prediction",
                 "incomplete": "lack a predictor's value",
                 "duplicate": "repeat an example already read (stale prediction files?)"}


def build(p: beam.Pipeline, config: EvaluationConfig, splits: SplitConfig):
    """Add the evaluation to ``p``: rows read, duplicates and unusable rows
    set aside into ``bad_rows.jsonl``, the report files in ``config.output_dir``.

    Args:
        p: the pipeline to add the evaluation to.
        config: the evaluation's settings.
        splits: the split rule (``config.splits()``).
    """
    rows = p | "Read rows" >> ReadPredictionRows(config.predictions, config.input_data_path)
    bad, collisions = [], None
    if config.predictions:
        unique = rows | "Drop duplicate rows" >> DropDuplicateRows()
        rows, bad, collisions = unique["rows"], [unique["bad"]], unique["collisions"]
    dropped = [b for b in BASELINES if b not in config.baseline_names]
    if dropped:
        rows = rows | "Leave out baselines" >> beam.Map(without_baselines, dropped)
    checked = rows | "Check rows" >> beam.ParDo(
        CheckRowsFn(config.extra, with_model=config.with_model,
                    baselines=config.baseline_names)).with_output_types(
        typing.Any).with_outputs(CheckRowsFn.BAD, main="rows")
    ((checked.bad, *bad)
     | "All bad rows" >> beam.Flatten()
     | "Format bad rows" >> beam.Map(lambda r: json.dumps(r, sort_keys=True))
     | "Write bad rows" >> beam.io.WriteToText(
         FileSystems.join(config.output_dir, "bad_rows"), file_name_suffix=".jsonl",
         num_shards=1, shard_name_template=""))
    return checked.rows | "Evaluate" >> Evaluate(config, splits, collisions)


def _read(path: str) -> str:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read().decode()


def read_metrics(output_dir: str) -> Dict[str, object]:
    """``metrics.json`` of the report in ``output_dir``."""
    return files.read_json(FileSystems.join(output_dir, "metrics.json"))


def run_evaluation(config: EvaluationConfig, options, test_pipeline=None) -> Dict[str, object]:
    """Evaluate ``config``'s rows with Beam ``options``.

    Args:
        config: the evaluation's settings.
        options: the Beam ``PipelineOptions``.
        test_pipeline: a ``TestPipeline`` to run on instead (tests).

    Returns:
        ``metrics.json`` as written (with ``rows_set_aside`` by kind,
        ``stale_files`` and ``files``), plus ``table`` (``metrics.md``) and
        ``usable``/``error`` when nothing could be evaluated (then only
        ``KEPT_WHEN_EMPTY`` is left of the report) or a time split asked for
        is empty, and ``bad_rows_shown`` (the first rows left out of
        each kind); or a dry run's report.

    Raises:
        UsageError, InputError: see ``check_prediction_files``; a prediction
            file the report would overwrite; an unwritable output folder.
    """
    splits = config.splits()
    out = config.output_dir
    if not runtime.is_dry_run(options):
        if config.predictions:
            inputs = [m.path for m in FileSystems.match([config.predictions])[0].metadata_list]
            runtime.refuse_overwrite(inputs, [FileSystems.join(out, n) for n in REPORT_FILES],
                                     "--predictions", "--output_dir")
        check_prediction_files(config.predictions, config.input_data_path, config.extra)
        runtime.check_writable(out, "--output_dir")
    runtime.apply_local_defaults(options)
    _, dry_run = runtime.run_pipeline(options, test_pipeline,
                                      lambda p: build(p, config, splits), NAMESPACE)
    if dry_run:
        return dry_run
    metrics = read_metrics(out)
    set_aside, shown = bad_rows_summary(FileSystems.join(out, "bad_rows.jsonl"))
    metrics.update(rows_unparseable=set_aside["unparseable"], rows_set_aside=set_aside,
                   stale_files=stale_report_files(out, metrics["files"]))
    files.write_json_atomically(FileSystems.join(out, "metrics.json"), metrics)
    empty = splits.test_years and empty_time_splits(metrics, splits)
    if not any(m.get("n") for split in metrics["pooled"].values() for m in split.values()):
        metrics.update(usable=False, error=f"no row of {config.predictions or config.input_data_path} "
                                           f"has a label and a prediction to evaluate")
        metrics["files"] = withdraw_empty_report(out, metrics["files"])
        files.write_json_atomically(FileSystems.join(out, "metrics.json"), metrics)
        metrics["table"] = ""
        metrics["bad_rows_shown"] = shown
        return metrics
    if empty:
        metrics.update(usable=False, error=empty)
    metrics["table"] = _read(FileSystems.join(out, "metrics.md"))
    metrics["bad_rows_shown"] = shown
    return metrics


#: what stays of a report with nothing evaluated: why (metrics.json's ``error``)
#: and which rows were left out
KEPT_WHEN_EMPTY = ("metrics.json", "bad_rows.jsonl")


def withdraw_empty_report(output_dir: str, written: List[str]) -> List[str]:
    """Delete the files of a report that evaluated nothing (empty tables and
    plots would pass for a result), but ``KEPT_WHEN_EMPTY``.

    Args:
        output_dir: the report's folder.
        written: the files this run wrote there (``metrics.json``'s ``files``).

    Returns:
        The files left.
    """
    gone = [n for n in written if n not in KEPT_WHEN_EMPTY]
    if gone:
        FileSystems.delete([FileSystems.join(output_dir, n) for n in gone])
    return [n for n in written if n in KEPT_WHEN_EMPTY]


def bad_rows_summary(path: str, shown: int = 5):
    """``({kind: rows}, {kind: the first ``shown`` rows})`` of ``bad_rows.jsonl``,
    read line by line (the file may hold millions of rows)."""
    counts = {kind: 0 for kind in BAD_ROW_KINDS}
    first: Dict[str, List[Dict[str, object]]] = {kind: [] for kind in BAD_ROW_KINDS}
    if not FileSystems.exists(path):
        return counts, first
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            kind = row.get("kind", "unparseable")
            counts[kind] += 1
            if len(first[kind]) < shown:
                first[kind].append(row)
    return counts, first


def report_lines(metrics: Dict[str, object], output_dir: str):
    """What a finished evaluation prints.

    Args:
        metrics: ``run_evaluation``'s result.
        output_dir: the report's folder.

    Returns:
        ``(stdout lines, stderr lines)``: the report, the paths of the files
        it wrote, files of an earlier run, one line when input shard names
        collide (``collision_line``), the rows left out (five of each kind)
        and the error, if any.
    """
    plots = [FileSystems.join(output_dir, n) for n in metrics["files"] if n.endswith(".png")]
    out: List[str] = [] if "metrics.md" not in metrics["files"] else [
        metrics["table"], f"Report: {FileSystems.join(output_dir, 'metrics.md')} (and "
                          f"metrics.json, per_sensor.csv, per_group.csv); plots: "
                          f"{', '.join(plots)}"]
    err: List[str] = []
    stale = metrics["stale_files"]
    if stale:
        err.append(f"NOTE: {len(stale)} files in {output_dir} are from an earlier run, not this "
                   f"one: {', '.join(stale)}")
    if metrics.get("shard_name_collisions"):
        err.append(collision_line(metrics))
    for kind, n in metrics["rows_set_aside"].items():
        if n:
            err.append(f"{n} rows {BAD_ROW_WORDS[kind]} and were left out (all in "
                       f"{FileSystems.join(output_dir, 'bad_rows.jsonl')}):")
            err += [f"  {b['source']}: {b['reason']}" for b in metrics["bad_rows_shown"][kind]]
    if metrics.get("error"):
        err.append(f"evaluate: error: {metrics['error']}")
    return out, err


def collision_line(metrics: Dict[str, object]) -> str:
    """The one line saying that input shard names collide.

    Args:
        metrics: ``run_evaluation``'s result, with ``shard_name_collisions``
            and ``colliding_shard_names`` (``duplicates.collision_summary``).

    Returns:
        The line: how many examples share an input shard name and record
        index with another example, and the names (the first five).
    """
    names = metrics.get("colliding_shard_names", [])
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (f"NOTE: input shard names collide: {metrics['shard_name_collisions']} examples share "
            f"their shard name and record index with a different example ({shown}); they are "
            f"told apart by sensor and time and all evaluated (shard_name_collisions in "
            f"metrics.json)")


def exit_code(metrics: Dict[str, object]) -> int:
    """The evaluation's exit status from its ``metrics`` (``run_evaluation``'s
    result): 1 when nothing could be evaluated or an asked-for time split is
    empty, else 0."""
    return 1 if metrics.get("usable") is False else 0

