"""Evaluation metrics, splits and rows for ``pipelines.evaluate``.

Metrics are computed from streaming sufficient statistics (``PairStats``:
count, means, and centred second moments, merged with Chan et al.'s parallel
formulas), so a ``CombineFn`` can compute them over any number of rows
without collecting them, and without the cancellation of raw sums:

* ``bias``   = mean(prediction - label)
* ``rmse``   = sqrt(mean((prediction - label)^2))
* ``ubrmse`` = sqrt(rmse^2 - bias^2)  (RMSE with the mean bias removed)
* ``r``      = Pearson correlation; ``None`` when either side is constant or
  n < 2 (never NaN in the outputs).

Splits (``sensor_split``): a sensor's split is fixed by the first 8 bytes of
``sha256(sensor_id)`` read as a big-endian integer ``h``; ``u = h / 2**64``;
train if ``u < train_fraction``, validation if
``u < train_fraction + validation_fraction``, test otherwise. Every run and
every tool (``evaluate``, ``train``) agree on it.
"""

import csv
import dataclasses
import hashlib
import io
import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np

from transforms.dataset import schema

SPLITS = ("train", "validation", "test")
BASELINES = {"smap": schema.SMAP_SM, "gldas": schema.GLDAS_SM}
MODEL_COLUMN = "prediction"


# --------------------------------------------------------------------------
# Splits

def sensor_split(sensor_id: str, train_fraction: float = 0.7,
                 validation_fraction: float = 0.15) -> str:
    h = int.from_bytes(hashlib.sha256(sensor_id.encode("utf-8")).digest()[:8], "big")
    u = h / 2.0 ** 64
    if u < train_fraction:
        return "train"
    if u < train_fraction + validation_fraction:
        return "validation"
    return "test"


def read_split_file(text: str) -> Dict[str, str]:
    """``sensor_id,split`` lines (a header line ``sensor_id,split`` is allowed)."""
    out = {}
    for row in csv.reader(io.StringIO(text)):
        if not row or row[0] == "sensor_id":
            continue
        if len(row) != 2 or row[1] not in SPLITS:
            raise ValueError(f"split file line {row!r}: expected sensor_id,<{'|'.join(SPLITS)}>")
        out[row[0]] = row[1]
    return out


def network_of(sensor_id: str) -> str:
    return sensor_id.split(schema.SENSOR_ID_SEPARATOR)[0]


# --------------------------------------------------------------------------
# Sufficient statistics

@dataclasses.dataclass
class PairStats:
    """Running statistics of (prediction p, label y) pairs."""

    n: int = 0
    mean_p: float = 0.0
    mean_y: float = 0.0
    m2_p: float = 0.0  # sum of squared deviations of p
    m2_y: float = 0.0
    c_py: float = 0.0  # sum of co-deviations

    def add(self, p: float, y: float) -> "PairStats":
        self.n += 1
        dp = p - self.mean_p
        dy = y - self.mean_y
        self.mean_p += dp / self.n
        self.mean_y += dy / self.n
        self.m2_p += dp * (p - self.mean_p)
        self.m2_y += dy * (y - self.mean_y)
        self.c_py += dp * (y - self.mean_y)
        return self

    def merge(self, other: "PairStats") -> "PairStats":
        if other.n == 0:
            return self
        if self.n == 0:
            return dataclasses.replace(other)
        n = self.n + other.n
        dp = other.mean_p - self.mean_p
        dy = other.mean_y - self.mean_y
        f = self.n * other.n / n
        return PairStats(n, self.mean_p + dp * other.n / n, self.mean_y + dy * other.n / n,
                         self.m2_p + other.m2_p + dp * dp * f,
                         self.m2_y + other.m2_y + dy * dy * f,
                         self.c_py + other.c_py + dp * dy * f)

    def metrics(self) -> Dict[str, Optional[float]]:
        if self.n == 0:
            return {"n": 0, "bias": None, "rmse": None, "ubrmse": None, "r": None}
        bias = self.mean_p - self.mean_y
        # mean((p - y)^2) = var(p - y) + bias^2, var(p - y) = (m2_p + m2_y - 2 c_py) / n
        var_diff = max((self.m2_p + self.m2_y - 2 * self.c_py) / self.n, 0.0)
        denom = math.sqrt(self.m2_p * self.m2_y)
        r = None
        if self.n >= 2 and denom > 1e-12 * max(1.0, self.m2_p + self.m2_y):
            r = max(-1.0, min(1.0, self.c_py / denom))
        return {"n": self.n, "bias": bias, "rmse": math.sqrt(var_diff + bias * bias),
                "ubrmse": math.sqrt(var_diff), "r": r}


class PairStatsFn(beam.CombineFn):
    """(prediction, label) pairs -> ``PairStats``."""

    def create_accumulator(self):
        return PairStats()

    def add_input(self, acc, pair):
        return acc.add(float(pair[0]), float(pair[1]))

    def merge_accumulators(self, accs):
        out = PairStats()
        for a in accs:
            out = out.merge(a)
        return out

    def extract_output(self, acc):
        return acc


HIST_BINS = 50


class Hist2dFn(beam.CombineFn):
    """(prediction, label) pairs -> a ``HIST_BINS`` x ``HIST_BINS`` count grid over [0, 1]^2
    (for the density scatter plot, streaming)."""

    def create_accumulator(self):
        return np.zeros((HIST_BINS, HIST_BINS), dtype=np.int64)

    def add_input(self, acc, pair):
        i = min(max(int(pair[1] * HIST_BINS), 0), HIST_BINS - 1)  # label: rows
        j = min(max(int(pair[0] * HIST_BINS), 0), HIST_BINS - 1)  # prediction: columns
        acc[i, j] += 1
        return acc

    def merge_accumulators(self, accs):
        return sum(accs, np.zeros((HIST_BINS, HIST_BINS), dtype=np.int64))

    def extract_output(self, acc):
        return acc


# --------------------------------------------------------------------------
# Rows -> keyed pairs

@dataclasses.dataclass(frozen=True)
class SplitConfig:
    train_fraction: float = 0.7
    validation_fraction: float = 0.15
    by_sensor_file: Optional[Dict[str, str]] = None  # sensor_id -> split
    single_split: Optional[str] = None  # every sensor in this split (--split_by none: "all")

    def split(self, sensor_id: str) -> Optional[str]:
        if self.single_split is not None:
            return self.single_split
        if self.by_sensor_file is not None:
            return self.by_sensor_file.get(sensor_id)
        return sensor_split(sensor_id, self.train_fraction, self.validation_fraction)


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


def keyed_pairs(row: Dict[str, object], splits: SplitConfig, extra: Sequence[str]):
    """``((split, sensor_id, predictor), (prediction, label))`` for a labelled row."""
    label = row.get("label")
    if label in (None, ""):
        return
    label = float(label)
    if not math.isfinite(label):
        return
    sensor_id = str(row["sensor_id"])
    split = splits.split(sensor_id)
    if split is None:
        return
    for predictor, value in predictor_values(row, extra).items():
        if math.isfinite(value):
            yield (split, sensor_id, predictor), (value, label)


REQUIRED_COLUMNS = ("sensor_id", "timestamp", "label")
SOURCE = "_source"  # "path:line" of a CSV row, for error messages


def parse_csv_file(text: str, path: str = "") -> Iterable[Dict[str, str]]:
    """The rows of one CSV file, each with ``SOURCE`` = ``path:line``."""
    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        row[SOURCE] = f"{path}:{reader.line_num}"
        yield row


def parse_csv_readable(readable_file) -> Iterable[Dict[str, str]]:
    """``fileio.ReadableFile`` -> its rows (see ``parse_csv_file``)."""
    return parse_csv_file(read_text(readable_file), readable_file.metadata.path)


def header_problem(first_lines: List[str], extra: Sequence[str]) -> Optional[str]:
    """What makes a CSV's header unusable (its first two lines given), or None.

    Needs ``REQUIRED_COLUMNS`` and at least one predictor column (the model's
    ``prediction``, ``smap_sm``, ``gldas_sm`` or an extra column).
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
    for column in ("timestamp", "label", MODEL_COLUMN, *BASELINES.values(), *extra):
        value = row.get(column)
        if value in (None, ""):
            continue
        try:
            float(value)
        except (TypeError, ValueError):
            return f"{column} {value!r} is not a number"
    return None


class CheckRowsFn(beam.DoFn):
    """Rows -> rows whose values are numbers; tagged ``bad``: ``{source, reason}``."""

    BAD = "bad"

    def __init__(self, extra: Sequence[str]):
        self.extra = tuple(extra)
        self.bad = beam.metrics.Metrics.counter("evaluate", "rows_unparseable")

    def process(self, row):
        problem = row_problem(row, self.extra)
        if problem is None:
            yield row
        else:
            self.bad.inc()
            yield beam.pvalue.TaggedOutput(self.BAD, {"source": row.get(SOURCE), "reason": problem})


def read_text(readable_file) -> str:
    return readable_file.read().decode("utf-8")


def shard_rows(shard: str):
    """Rows (no prediction) of every example of a shard, for the baselines."""
    from transforms.dataset import example_proto
    from transforms import inference

    for _, index, record in inference.iter_examples([shard]):
        try:
            yield inference.row(inference.example_key(shard, index, record), None)
        except example_proto.MalformedExampleError:
            beam.metrics.Metrics.counter("evaluate", "malformed_skipped").inc()


def summarise_sensors(per_sensor: List[Dict[str, object]], min_samples: int) -> Dict[str, object]:
    """Mean and median of per-sensor r and ubRMSE, over sensors with enough pairs."""
    used = [m for m in per_sensor if m["n"] >= min_samples]
    out: Dict[str, object] = {"sensors": len(per_sensor), "sensors_used": len(used),
                              "sensors_excluded_min_samples": len(per_sensor) - len(used)}
    for metric in ("r", "ubrmse", "rmse", "bias"):
        values = [m[metric] for m in used if m[metric] is not None]
        out[f"{metric}_mean"] = float(np.mean(values)) if values else None
        out[f"{metric}_median"] = float(np.median(values)) if values else None
        out[f"{metric}_sensors"] = len(values)
    return out


# --------------------------------------------------------------------------
# The Beam wiring

def _metrics_row(element) -> Dict[str, object]:
    (split, sensor_id, predictor), stats = element
    return {"split": split, "sensor_id": sensor_id, "network": network_of(sensor_id),
            "predictor": predictor, **stats.metrics()}


def _nest(items, depth: int) -> Dict:
    """``[((a, b), v), ...]`` -> ``{a: {b: v}}`` (depth 2) or three levels (depth 3)."""
    out: Dict = {}
    for key, value in items:
        d = out
        for k in key[:depth - 1]:
            d = d.setdefault(k, {})
        d[key[depth - 1]] = value
    return out


def build_report(_, pooled, networks, sensor_rows, hists, series_points, *, min_samples: int,
                 table_splits: List[str], output_dir: str) -> List[str]:
    from transforms.evaluation import report_files as report_lib

    per_sensor_summary: Dict[str, Dict[str, object]] = {}
    by_split_pred: Dict[Tuple[str, str], list] = {}
    for r in sensor_rows:
        by_split_pred.setdefault((r["split"], r["predictor"]), []).append(r)
    for (split, predictor), rows in by_split_pred.items():
        per_sensor_summary.setdefault(split, {})[predictor] = summarise_sensors(rows, min_samples)
    pooled_metrics = _nest([(k, s.metrics()) for k, s in pooled], 2)
    all_splits = [s for s in (*SPLITS, "all") if s in pooled_metrics]
    pairs_by_split = {s: max((m["n"] for m in pooled_metrics[s].values()), default=0)
                      for s in all_splits}
    sensors_by_split = {s: len({r["sensor_id"] for r in sensor_rows if r["split"] == s})
                        for s in all_splits}
    series: Dict[str, List[Dict[str, object]]] = {}
    for sensor_id, point in series_points:
        series.setdefault(sensor_id, []).append(point)
    report = {
        "pooled": pooled_metrics,
        "per_sensor_summary": per_sensor_summary,
        "per_network": _nest([(k, s.metrics()) for k, s in networks], 3),
        "min_samples_per_sensor": min_samples,
        "table_splits": [s for s in table_splits if s in pooled_metrics] or all_splits,
        "all_splits": all_splits,
        "pairs_by_split": pairs_by_split,
        "sensors_by_split": sensors_by_split,
    }
    hist_nested = _nest(list(hists), 2)
    return report_lib.write_report(report, hist_nested, list(sensor_rows), series, output_dir)


def _series_point(row, extra):
    return row["sensor_id"], {"timestamp": float(row["timestamp"]), "label": float(row["label"]),
                              "predictors": predictor_values(row, extra)}


@dataclasses.dataclass
class Evaluate(beam.PTransform):
    """Rows (dicts with ``sensor_id``, ``timestamp``, ``label`` and predictor
    columns) -> the report files in ``output_dir`` (their paths)."""

    output_dir: str
    splits: SplitConfig = SplitConfig()
    extra_columns: Tuple[str, ...] = ()
    min_samples_per_sensor: int = 10
    table_splits: Tuple[str, ...] = ("validation", "test")
    series_sensors: int = 4

    def expand(self, rows):
        extra = self.extra_columns
        pairs = rows | "Key pairs" >> beam.FlatMap(keyed_pairs, self.splits, extra)
        per_sensor = pairs | "Per-sensor stats" >> beam.CombinePerKey(PairStatsFn())
        pooled = (per_sensor
                  | "By split" >> beam.Map(lambda kv: ((kv[0][0], kv[0][2]), kv[1]))
                  | "Pooled stats" >> beam.CombinePerKey(_MergeStatsFn()))
        networks = (per_sensor
                    | "By network" >> beam.Map(
                        lambda kv: ((kv[0][0], network_of(kv[0][1]), kv[0][2]), kv[1]))
                    | "Network stats" >> beam.CombinePerKey(_MergeStatsFn()))
        sensor_rows = per_sensor | "Per-sensor metrics" >> beam.Map(_metrics_row)
        hists = (pairs
                 | "Pairs by split" >> beam.Map(lambda kv: ((kv[0][0], kv[0][2]), kv[1]))
                 | "Density grids" >> beam.CombinePerKey(Hist2dFn()))
        top = (sensor_rows
               | "Sensor sizes" >> beam.Map(lambda r: (r["sensor_id"], r["n"]))
               | "Largest n per sensor" >> beam.CombinePerKey(max)
               | "Size first" >> beam.Map(lambda kv: (kv[1], kv[0]))
               | "Largest sensors" >> beam.combiners.Top.Of(self.series_sensors)
               | "Sensor ids" >> beam.Map(lambda top: [sensor for _, sensor in top]))
        series = (rows
                  | "Rows of largest sensors" >> beam.Filter(
                      lambda r, chosen: r.get("label") not in (None, "")
                      and r.get("sensor_id") in chosen, beam.pvalue.AsSingleton(top))
                  | "Series points" >> beam.Map(_series_point, extra))
        side = beam.pvalue.AsList
        return (rows.pipeline
                | "Report trigger" >> beam.Create([None])
                | "Write report" >> beam.FlatMap(
                    build_report, side(pooled), side(networks), side(sensor_rows), side(hists),
                    side(series), min_samples=self.min_samples_per_sensor,
                    table_splits=list(self.table_splits), output_dir=self.output_dir))


class _MergeStatsFn(PairStatsFn):
    """``PairStats`` -> their merge (exact: the same as combining the pairs)."""

    def add_input(self, acc, stats):
        return acc.merge(stats)


