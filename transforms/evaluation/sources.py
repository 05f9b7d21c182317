"""Where evaluation's rows come from: ``ReadPredictionRows`` and the checks
of its input files before a run."""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import List, Optional, Sequence

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms import runtime
from transforms.dataset import tfrecord_io
from transforms.evaluation.inputs import header_problem, parse_csv_readable, shard_rows


def is_parquet(pattern: str) -> bool:
    return pattern.endswith((".parquet", ".parquet*"))


@dataclasses.dataclass
class ReadPredictionRows(beam.PTransform):
    """Pipeline start -> rows (dicts of the prediction columns).

    Attributes:
        predictions: glob of ``run_inference`` outputs (``.csv`` with a
            header, or ``.parquet``); each CSV row carries its ``path:line``.
        input_data_path: glob of shards, read instead when ``predictions`` is
            None (rows without a prediction: the baselines alone).
    """

    predictions: Optional[str] = None
    input_data_path: Optional[str] = None

    def expand(self, pbegin):
        if self.predictions and is_parquet(self.predictions):
            return pbegin | "Read predictions" >> beam.io.ReadFromParquet(
                self.predictions, validate=False)
        if self.predictions:
            return (pbegin
                    | "Match predictions" >> fileio.MatchFiles(self.predictions)
                    | "Open" >> fileio.ReadMatches()
                    | "Parse CSV" >> beam.FlatMap(parse_csv_readable))
        return (pbegin
                | "Match shards" >> tfrecord_io.MatchShards(self.input_data_path)
                | "Spread shards" >> beam.Reshuffle()
                | "Read shard rows" >> beam.FlatMap(shard_rows))


def _first_lines(path: str, n: int = 2) -> List[str]:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        head = f.read(1 << 16).decode("utf-8", "replace")
    return head.splitlines()[:n]


def _check_extra_columns(path: str, columns: List[str], extra: Sequence[str]) -> None:
    missing = [c for c in extra if c not in columns]
    if missing and columns:
        raise runtime.UsageError(f"--extra_columns {','.join(missing)}: no such column in "
                                 f"{path} (its columns: {', '.join(columns)})")


def _check_parquet(path: str, extra: Sequence[str]) -> None:
    """A Parquet file opens and its schema has what evaluation needs, read
    from its footer only."""
    import pyarrow.parquet as pq

    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            columns = pq.ParquetFile(f).schema_arrow.names
    except Exception as e:  # noqa: BLE001 - pyarrow's errors name neither file nor cause well
        raise runtime.InputError(f"{path} is not a readable Parquet file: "
                                 f"{type(e).__name__}: {e}") from e
    _check_extra_columns(path, columns, extra)
    header = io.StringIO()
    csv.writer(header).writerow(columns)
    problem = header_problem([header.getvalue().strip()], extra)
    if problem:
        problem = problem.split(" (first line")[0].replace("header", "schema", 1)
        raise runtime.InputError(f"{path} {problem} (its columns: {', '.join(columns)})")


def check_prediction_files(predictions: Optional[str], input_data_path: Optional[str],
                           extra: Sequence[str]) -> List[str]:
    """Before anything runs: the input files exist, and prediction files have
    the columns (and CSVs at least one row).

    Args:
        predictions: the prediction files' glob (None: evaluate shards).
        input_data_path: the shards' glob (the baselines alone).
        extra: ``--extra_columns``, columns every prediction file must have.

    Returns:
        The matched files (shards when ``predictions`` is None).

    Raises:
        InputError: naming the file: none matches, a header or schema lacks
            a needed column, a CSV has no row, a Parquet file is not one.
        UsageError: an ``--extra_columns`` name a file does not have; see
            ``runtime.input_shards`` for shards.
    """
    if not predictions:
        return runtime.input_shards(input_data_path)
    paths = sorted(m.path for m in FileSystems.match([predictions])[0].metadata_list)
    if not paths:
        raise runtime.InputError(f"no files match {predictions}")
    if is_parquet(predictions):
        for path in paths:
            _check_parquet(path, extra)
        return paths
    with_rows = 0
    for path in paths:
        lines = _first_lines(path)
        _check_extra_columns(path, next(csv.reader(lines[:1]), []), extra)
        problem = header_problem(lines, extra)
        if problem:
            raise runtime.InputError(f"{path} {problem}")
        with_rows += len(lines) > 1
    if not with_rows:
        raise runtime.InputError(f"{', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''}: "
                                 f"a header but no rows")
    return paths
