"""Which prediction rows are the same example read twice, and which only
share an input shard's name.

A row names its example by the input shard's *file name* and the record's
position in it (``shard``, ``index``). File names repeat across datasets:
every ``cut_examples`` output is ``data-00000-of-00001.tfrecord.gz``, so the
predictions of two scenes, regions or datasets evaluated together hold
different examples at the same ``(shard, index)``. An example is therefore
``(shard, index, sensor_id, timestamp)`` (``example_identity``): rows that
agree on all four are one example read twice (e.g. an earlier run's
prediction files beside this run's: ``duplicate``, counted once), rows that
share only ``(shard, index)`` are distinct examples, all evaluated, and
counted as ``shard_name_collisions`` (``collision_summary``) so the run can
say, once, that input shard names collide.
"""

import dataclasses
import math
from typing import Dict, Iterable, Optional, Tuple

import apache_beam as beam

from transforms.dataset import schema
from transforms.evaluation.inputs import COUNTERS, SOURCE, CheckRowsFn

#: The output of ``first_of_duplicates`` that counts shard-name collisions.
COLLISIONS = "collisions"


def row_identity(row: Dict[str, object]) -> Optional[Tuple[str, str]]:
    """``(shard, index)`` of a prediction row, or None when it has neither.

    Args:
        row: a prediction row (CSV or Parquet columns).

    Returns:
        The record's place, as strings; None without a shard or an index.
    """
    shard, index = row.get(schema.SHARD), row.get(schema.INDEX)
    if shard in (None, "") or index in (None, ""):
        return None
    return str(shard), str(index)


def _timestamp_key(value) -> str:
    """A timestamp as one string whether read as text (CSV) or a number
    (Parquet): ``1.5e12`` and ``1500000000000.0`` are the same time."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return repr(number) if math.isfinite(number) else str(value)


def example_identity(row: Dict[str, object]) -> Tuple[str, str]:
    """What tells apart examples that share ``(shard, index)``: the sensor
    and the label's time.

    Args:
        row: a prediction row.

    Returns:
        ``(sensor_id, timestamp)``, the timestamp normalised so that its
        text and number forms agree.
    """
    return str(row.get(schema.SENSOR_ID)), _timestamp_key(row.get(schema.TIMESTAMP))


def _source_order(row: Dict[str, object]):
    """``path:line`` as ``(path, line)``, so line 14 comes before line 124."""
    path, _, line = str(row.get(SOURCE)).rpartition(":")
    return (path, int(line)) if line.isdigit() else (str(row.get(SOURCE)), 0)


def first_of_duplicates(key_rows, bad_tag: str = CheckRowsFn.BAD,
                        collision_tag: str = COLLISIONS):
    """The rows read at one ``(shard, index)`` -> each example's first row.

    Rows are taken in source order (``path:line``); within them, each
    example (``example_identity``) keeps its first row, and every later copy
    is tagged ``bad_tag`` as a ``duplicate`` naming where the kept copy is.
    When the place holds more than one example (input shards of the same
    name), ``(shard, number of examples)`` is tagged ``collision_tag``.

    Args:
        key_rows: ``((shard, index), rows)``.
        bad_tag: the tag of the rows set aside.
        collision_tag: the tag of the collision counts.
    """
    (shard, _), rows = key_rows
    examples: Dict[Tuple[str, str], list] = {}
    for row in sorted(rows, key=_source_order):
        examples.setdefault(example_identity(row), []).append(row)
    for copies in examples.values():
        yield copies[0]
        for row in copies[1:]:
            COUNTERS("rows_duplicate").inc()
            yield beam.pvalue.TaggedOutput(bad_tag, {
                "source": row.get(SOURCE), "kind": "duplicate",
                "reason": f"the example {row.get(schema.SHARD)} record {row.get(schema.INDEX)} "
                          f"(sensor {row.get(schema.SENSOR_ID)} at {row.get(schema.TIMESTAMP)}) "
                          f"is also in {copies[0].get(SOURCE)} (counted once)"})
    if len(examples) > 1:
        COUNTERS("shard_name_collisions").inc(len(examples))
        yield beam.pvalue.TaggedOutput(collision_tag, (shard, len(examples)))


def collision_summary(per_shard: Iterable[Tuple[str, int]]) -> Dict[str, object]:
    """What ``metrics.json`` says of input shard names shared by different examples.

    Args:
        per_shard: ``(shard name, examples)``: for each shard name, how many
            distinct examples share their ``(shard, index)`` with another.

    Returns:
        ``shard_name_collisions`` (those examples, all evaluated) and
        ``colliding_shard_names`` (sorted).
    """
    counts: Dict[str, int] = {}
    for shard, examples in per_shard:
        counts[shard] = counts.get(shard, 0) + examples
    return {"shard_name_collisions": sum(counts.values()),
            "colliding_shard_names": sorted(counts)}


def _keyed_by_record(row):
    return row_identity(row), row


def _has_record(keyed) -> bool:
    return keyed[0] is not None


def _has_no_record(keyed) -> bool:
    return keyed[0] is None


def _row_of(keyed):
    return keyed[1]


@dataclasses.dataclass
class DropDuplicateRows(beam.PTransform):
    """Rows -> each example's row once (``rows``), the other copies (``bad``,
    ``kind`` = ``duplicate``) and ``(shard name, examples)`` of input shard
    names shared by different examples (``collisions``); see
    ``first_of_duplicates``. Rows without a shard and index pass as they are."""

    def expand(self, rows):
        keyed = rows | "Key by record" >> beam.Map(_keyed_by_record)
        identified = (keyed
                      | "With record" >> beam.Filter(_has_record)
                      | "Group by record" >> beam.GroupByKey()
                      | "First of each example" >> beam.FlatMap(first_of_duplicates).with_outputs(
                          CheckRowsFn.BAD, COLLISIONS, main="rows"))
        anonymous = (keyed
                     | "Without record" >> beam.Filter(_has_no_record)
                     | "Rows" >> beam.Map(_row_of))
        collisions = (identified[COLLISIONS]
                      | "Collisions per shard name" >> beam.CombinePerKey(sum))
        return {"rows": (identified.rows, anonymous) | "All rows" >> beam.Flatten(),
                "bad": identified[CheckRowsFn.BAD], "collisions": collisions}
