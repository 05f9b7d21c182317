"""The evaluation report assembled from the pipeline's small aggregates.

``build_report`` turns the combined statistics (pooled per split and
predictor, per network, per sensor), the density grids and the series of a
few sensors into one ``Report``; ``report_files.write_report`` writes it.
Nothing here sees individual rows.
"""

import dataclasses
from typing import Dict, List, Tuple

import numpy as np

from transforms.dataset import schema
from transforms.evaluation.metrics import summarise_sensors
from transforms.dataset.splits import network_of


@dataclasses.dataclass
class Report:
    """What ``metrics.json`` holds (``summary``) and what the other files show."""

    summary: Dict[str, object]
    hists: Dict[str, Dict[str, np.ndarray]]  # split -> predictor -> HIST_BINS^2 counts
    per_sensor_rows: List[Dict[str, object]]
    series: Dict[str, List[Dict[str, object]]]  # sensor_id -> points


def metrics_row(element) -> Dict[str, object]:
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
                 table_splits: List[str]) -> Report:
    """The side inputs of ``Evaluate`` -> the ``Report``."""
    per_sensor_summary: Dict[str, Dict[str, object]] = {}
    by_split_pred: Dict[Tuple[str, str], list] = {}
    for r in sensor_rows:
        by_split_pred.setdefault((r["split"], r["predictor"]), []).append(r)
    for (split, predictor), rows in by_split_pred.items():
        per_sensor_summary.setdefault(split, {})[predictor] = summarise_sensors(rows, min_samples)
    pooled_metrics = _nest([(k, s.metrics()) for k, s in pooled], 2)
    all_splits = [s for s in (*schema.SPLITS, "all") if s in pooled_metrics]
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
    return Report(report, _nest(list(hists), 2), list(sensor_rows), series)
