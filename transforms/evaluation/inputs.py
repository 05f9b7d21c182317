"""The rows ``evaluate`` reads, and the (prediction, label) pairs it keys from them.

Rows come from prediction files (CSV with a header, or Parquet) or, for the
baselines alone, straight from shards (``shard_rows``). A file whose header
lacks what evaluation needs is refused before the run (``header_problem``);
a row with a value that is not a number is set aside with its ``path:line``
(``CheckRowsFn``). ``keyed_pairs`` keys each labelled row's predictors by
``PairKey(split, sensor_id, predictor)``; ``keyed_points`` a sensor's series
by ``SeriesKey``; ``keyed_group_pairs`` the breakdowns by ``GroupKey``. The
keys are NamedTuples encoded by Beam's ``RowCoder`` (deterministic, compact).
"""

import csv
import io
import math
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import apache_beam as beam

from transforms.dataset import example_proto, keys, schema, tfrecord_io
from transforms.dataset.counters import FlowCounters
from transforms.dataset.splits import SplitConfig, network_of, year_of

NAMESPACE = "evaluate"
COUNTERS = FlowCounters(NAMESPACE)


BASELINES = {"smap": schema.SMAP_SM, "gldas": schema.GLDAS_SM}


MODEL_COLUMN = schema.PREDICTION


class PairKey(NamedTuple):
    """What a (prediction, label) pair counts towards: one predictor of one
    sensor in one split."""

    split: str
    sensor_id: str
    predictor: str


class SeriesKey(NamedTuple):
    """One sensor's time series in one split."""

    split: str
    sensor_id: str


class GroupKey(NamedTuple):
    """One predictor in one group of a breakdown (``BREAKDOWNS``) of a split."""

    split: str
    breakdown: str
    group: str
    predictor: str


for _key in (PairKey, SeriesKey, GroupKey):
    beam.coders.registry.register_coder(_key, beam.coders.RowCoder)


class Labelled(NamedTuple):
    """A row with a finite label in a split: its ``values`` are its finite
    predictor values by predictor name (empty when it has none)."""

    split: str
    sensor_id: str
    label: float
    values: Dict[str, float]


def predictor_values(row: Dict[str, object], extra: Sequence[str]) -> Dict[str, float]:
    """Predictor name -> value for one row (missing values are left out)."""
    out = {}
    if row.get(MODEL_COLUMN) not in (None, ""):
        out["model"] = float(row[MODEL_COLUMN])
    for name, column in BASELINES.items():
        if row.get(column) not in (None, ""):
            out[name] = float(row[column]) / schema.AUX_SCALE
    for column in extra:
        if row.get(column) not in (None, ""):
            out[column] = float(row[column])
    return out


def _number(row: Dict[str, object], column: str) -> Optional[float]:
    value = row.get(column)
    if value in (None, ""):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def labelled(row: Dict[str, object], splits: SplitConfig,
             extra: Sequence[str]) -> Optional[Labelled]:
    """The row as ``Labelled`` when it has a finite label in a split, else None."""
    label = _number(row, schema.LABEL)
    if label is None:
        return None
    sensor_id = str(row[schema.SENSOR_ID])
    split = splits.split(sensor_id, _number(row, schema.TIMESTAMP))
    if split is None:
        return None
    values = {p: v for p, v in predictor_values(row, extra).items() if math.isfinite(v)}
    return Labelled(split, sensor_id, label, values)


def row_status(row: Dict[str, object], splits: SplitConfig, extra: Sequence[str]) -> str:
    """``evaluated``, or why a row gives no pair: ``no_label``, ``no_split``
    (a sensor the split file does not list, a time split without a
    timestamp) or ``no_prediction`` (no predictor value)."""
    if _number(row, schema.LABEL) is None:
        return "no_label"
    found = labelled(row, splits, extra)
    if found is None:
        return "no_split"
    return "evaluated" if found.values else "no_prediction"


def keyed_pairs(row: Dict[str, object], splits: SplitConfig, extra: Sequence[str]):
    """``(PairKey, (prediction, label))`` for each predictor of a labelled row."""
    found = labelled(row, splits, extra)
    if found is None:
        return
    split, sensor_id, label, values = found
    for predictor, value in values.items():
        yield PairKey(split, sensor_id, predictor), (value, label)


def keyed_points(row: Dict[str, object], splits: SplitConfig, extra: Sequence[str]):
    """``(SeriesKey, (timestamp, label, {predictor: value}))`` for a labelled
    row with a timestamp and a predictor value: one point of its sensor's series."""
    found = labelled(row, splits, extra)
    timestamp = _number(row, schema.TIMESTAMP)
    if found is None or timestamp is None or not found.values:
        return
    split, sensor_id, label, values = found
    yield SeriesKey(split, sensor_id), (timestamp, label, values)


#: Seasons by month (meteorological: December-February is DJF on either hemisphere).
SEASONS = {12: "DJF", 1: "DJF", 2: "DJF", 3: "MAM", 4: "MAM", 5: "MAM",
           6: "JJA", 7: "JJA", 8: "JJA", 9: "SON", 10: "SON", 11: "SON"}
#: Bins of the age of an input (days from the label's time, either way).
AGE_BINS = ((1.0, "<= 1 day"), (3.0, "1-3 days"), (7.0, "3-7 days"))
AGE_OVER = "> 7 days"
BREAKDOWNS = ("network", "land_cover", "sentinel_1_age", "sentinel_2_age", "month", "season")


def age_bin(millis: float) -> str:
    days = abs(millis) / 86400e3
    for limit, name in AGE_BINS:
        if days <= limit:
            return name
    return AGE_OVER


def breakdown_groups(row: Dict[str, object]) -> List[Tuple[str, str]]:
    """``(breakdown, group)`` of a row for each of ``BREAKDOWNS`` it has the column for."""
    import datetime

    groups = [("network", network_of(str(row[schema.SENSOR_ID])))]
    cover = _number(row, schema.LAND_COVER)
    if cover is not None:
        groups.append(("land_cover", schema.LAND_COVER_CLASSES.get(int(cover), f"class {int(cover)}")))
    for breakdown, column in (("sentinel_1_age", schema.SENTINEL_1_AGE),
                              ("sentinel_2_age", schema.SENTINEL_2_AGE)):
        age = _number(row, column)
        if age is not None:
            groups.append((breakdown, age_bin(age)))
    timestamp = _number(row, schema.TIMESTAMP)
    if timestamp is not None and year_of(timestamp) is not None:
        month = datetime.datetime.fromtimestamp(timestamp / 1000, datetime.timezone.utc).month
        groups += [("month", f"{month:02d}"), ("season", SEASONS[month])]
    return groups


def keyed_group_pairs(row: Dict[str, object], splits: SplitConfig, extra: Sequence[str]):
    """``(GroupKey, (prediction, label))`` for each breakdown group and
    predictor of a labelled row."""
    found = labelled(row, splits, extra)
    if found is None:
        return
    split, _, label, values = found
    for breakdown, group in breakdown_groups(row):
        for predictor, value in values.items():
            yield GroupKey(split, breakdown, group, predictor), (value, label)


REQUIRED_COLUMNS = (schema.SENSOR_ID, schema.TIMESTAMP, schema.LABEL)


SOURCE = "_source"  # "path:line" of a CSV row, for error messages


def parse_csv_file(text: str, path: str = "") -> Iterable[Dict[str, str]]:
    """The rows of one CSV file, each with ``SOURCE`` = ``path:line``."""
    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        row[SOURCE] = f"{path}:{reader.line_num}"
        yield row


def parse_csv_readable(readable_file) -> Iterable[Dict[str, str]]:
    """The rows (``parse_csv_file``) of ``readable_file``, a ``fileio.ReadableFile``."""
    return parse_csv_file(read_text(readable_file), readable_file.metadata.path)


def header_problem(first_lines: List[str], extra: Sequence[str]) -> Optional[str]:
    """What makes a CSV's header unusable, or None.

    Needs ``REQUIRED_COLUMNS`` and at least one predictor column (the model's
    ``prediction``, ``smap_sm``, ``gldas_sm`` or an extra column).

    Args:
        first_lines: the file's first two lines.
        extra: ``--extra_columns``, columns the file must have.
    """
    if not first_lines or not first_lines[0].strip():
        return f"is empty: expected a header line with the columns {', '.join(REQUIRED_COLUMNS)}"
    header = next(csv.reader([first_lines[0]]))
    predictors = (MODEL_COLUMN, *BASELINES.values(), *extra)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if not any(c in header for c in predictors):
        missing.append(f"one of {', '.join(predictors)}")
    if missing:
        return (f"header lacks the columns {', '.join(missing)} (first line: "
                f"{first_lines[0].strip()[:120]!r}; is the header missing?)")
    return None


def row_problem(row: Dict[str, object], extra: Sequence[str]) -> Optional[str]:
    """Why a row cannot be evaluated (a value that is not a number), or None."""
    for column in (schema.TIMESTAMP, schema.LABEL, MODEL_COLUMN, *BASELINES.values(), *extra,
                   schema.LAND_COVER, schema.SENTINEL_1_AGE, schema.SENTINEL_2_AGE):
        value = row.get(column)
        if value in (None, ""):
            continue
        try:
            float(value)
        except (TypeError, ValueError):
            return f"{column} {value!r} is not a number"
    return None


def predictor_columns(extra: Sequence[str], with_model: bool,
                      baselines: Sequence[str] = tuple(BASELINES)) -> Tuple[str, ...]:
    """The columns of the predictors every evaluated row must have: the model's
    ``prediction`` (``with_model``: when evaluating predictions), the
    ``baselines``' (SMAP, GLDAS by default), and the ``extra`` columns."""
    return (((MODEL_COLUMN,) if with_model else ()) + tuple(BASELINES[b] for b in baselines)
            + tuple(extra))


def without_baselines(row: Dict[str, object], dropped: Sequence[str]) -> Dict[str, object]:
    """``row`` without the columns of the ``dropped`` baselines (names of
    ``BASELINES``): a baseline not evaluated is neither required nor used."""
    columns = {BASELINES[b] for b in dropped}
    return {k: v for k, v in row.items() if k not in columns}


def pair_problem(row: Dict[str, object], columns: Sequence[str]) -> Optional[Tuple[str, str]]:
    """``(kind, reason)`` when a parsed row cannot give a pair to every
    predictor of ``columns`` (see ``predictor_columns``), else None.

    ``nonfinite``: a label or predictor value that is NaN or infinite (a NaN
    label is what the released merge writes for a NaN reading);
    ``incomplete``: a labelled row lacking one predictor's value. Either way
    the row is left out for every predictor, so all predictors of a table
    are compared on exactly the same pairs. A row without a label is no
    pair at all and is counted as ``no_label``, not here.
    """
    label = row.get(schema.LABEL)
    if label in (None, ""):
        return None
    if not math.isfinite(float(label)):
        return "nonfinite", f"{schema.LABEL} {label} is not finite"
    for column in columns:
        value = row.get(column)
        if value in (None, ""):
            return "incomplete", f"{column} is missing (every predictor needs a value)"
        if not math.isfinite(float(value)):
            return "nonfinite", f"{column} {value} is not finite"
    return None


#: Why rows are set aside into ``bad_rows.jsonl`` (each line's ``kind``).
BAD_ROW_KINDS = ("unparseable", "nonfinite", "incomplete", "duplicate")


class CheckRowsFn(beam.DoFn):
    """Rows -> rows every predictor can be evaluated on; tagged ``bad``:
    ``{source, kind, reason}`` (``kind`` one of ``BAD_ROW_KINDS``: a value
    that is not a number, see ``row_problem``; a non-finite or missing
    predictor value or label, see ``pair_problem``).

    Args:
        extra: extra prediction columns evaluated as predictors.
        with_model: whether rows must hold the model's ``prediction``.
        baselines: the baselines evaluated (names of ``BASELINES``).
    """

    BAD = "bad"

    def __init__(self, extra: Sequence[str], with_model: bool = True,
                 baselines: Sequence[str] = tuple(BASELINES)):
        self.extra = tuple(extra)
        self.columns = predictor_columns(self.extra, with_model, baselines)

    def setup(self):
        self.counters = {kind: COUNTERS(f"rows_{kind}") for kind in BAD_ROW_KINDS}

    def process(self, row):
        problem = row_problem(row, self.extra)
        found = ("unparseable", problem) if problem else pair_problem(row, self.columns)
        if found is None:
            yield row
        else:
            kind, reason = found
            self.counters[kind].inc()
            yield beam.pvalue.TaggedOutput(
                self.BAD, {"source": row.get(SOURCE), "kind": kind, "reason": reason})


def read_text(readable_file) -> str:
    return readable_file.read().decode("utf-8")


def shard_rows(shard: str):
    """Rows (no prediction) of every example of a shard, for the baselines."""
    for index, record in enumerate(tfrecord_io.read_shard(shard)):
        try:
            yield keys.row(keys.example_key(shard, index, record), None).to_dict()
        except example_proto.MalformedExampleError:
            COUNTERS("malformed_skipped").inc()
