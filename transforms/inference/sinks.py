"""Where predictions go: ``WritePredictions`` and the files a run wrote."""

from __future__ import annotations

import dataclasses
from typing import List, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.dataset.failures import Failure
from transforms.dataset.keys import PredictionRow
from transforms.inference.config import SUFFIXES
from transforms.inference.pipeline import COUNTERS
from transforms.inference.rows import CSV_HEADER, csv_line, parquet_schema, tf_example


def output_patterns(prefix: str, output_format: str) -> List[str]:
    """Globs of every file a full run writes under ``prefix`` in ``output_format``
    (``csv``, ``parquet`` or ``tfrecord``)."""
    return [f"{prefix}-*-of-*{SUFFIXES[output_format]}", f"{prefix}-failures.jsonl",
            f"{prefix}-summary.json"]


def outputs_of_run(prefix: str, output_format: str, num_files: int) -> Tuple[List[str], List[str]]:
    """This run's prediction files and the other files of its prefix.

    A run writes ``-SSSSS-of-NNNNN`` with N its own file count (the
    ``output_files`` counter), so files of the prefix with another N are an
    earlier run's (stale: a glob over the prefix would read them too).

    Args:
        prefix: the run's ``--output_path``; output_format: its format.
        num_files: the number of prediction files the run wrote.

    Returns:
        ``(this run's files, stale files)``, each sorted.
    """
    found = sorted(m.path for m in FileSystems.match(
        [output_patterns(prefix, output_format)[0]])[0].metadata_list)
    ours = [p for p in found if p.endswith(f"-of-{num_files:05d}{SUFFIXES[output_format]}")]
    return ours, [p for p in found if p not in ours]


@dataclasses.dataclass
class WritePredictions(beam.PTransform):
    """``{"rows": PredictionRows, "failures": Failures}`` ->
    ``<prefix>-SSSSS-of-NNNNN<suffix>`` and ``<prefix>-failures.jsonl``.

    Attributes:
        prefix: the output path prefix (local or ``gs://``).
        output_format: ``csv`` (with a header), ``parquet`` or ``tfrecord``
            (gzipped ``tf.train.Example`` rows).

    Returns (from ``expand``) the names of the prediction files written;
    their number is counted as ``output_files``.
    """

    prefix: str
    output_format: str = "csv"

    def expand(self, predicted):
        rows, prefix = predicted["rows"], self.prefix
        if self.output_format == "csv":
            written = (rows | "To CSV" >> beam.Map(csv_line)
                       | "Write CSV" >> beam.io.WriteToText(prefix, file_name_suffix=".csv",
                                                            header=CSV_HEADER))
        elif self.output_format == "parquet":
            written = (rows | "Rows as dicts" >> beam.Map(PredictionRow.to_dict)
                       | "Write Parquet" >> beam.io.WriteToParquet(
                           prefix, parquet_schema(), file_name_suffix=".parquet"))
        else:
            written = (rows | "To tf.Example" >> beam.Map(tf_example)
                       | "Write TFRecord" >> beam.io.WriteToTFRecord(
                           prefix, file_name_suffix=".tfrecord.gz"))
        (predicted["failures"] | "Format failures" >> beam.Map(Failure.to_json)
         | "Write failures" >> beam.io.WriteToText(f"{prefix}-failures", file_name_suffix=".jsonl",
                                                   num_shards=1, shard_name_template=""))
        counter = COUNTERS("output_files")
        return written | "Count output files" >> beam.Map(lambda name: counter.inc() or name)
