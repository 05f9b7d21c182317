"""The evaluation report assembled from the pipeline's small aggregates.

``build_report`` turns the combined statistics (pooled per split and
predictor, per network, per sensor), the density grids and the series of a
few sensors into one ``Report``; ``report_files.write_report`` writes it.
Nothing here sees individual rows.
"""

import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np

from transforms.dataset import schema
from transforms.evaluation.duplicates import collision_summary
from transforms.evaluation.metrics import bootstrap_interval, summarise_sensors
from transforms.dataset.splits import network_of


@dataclasses.dataclass(frozen=True)
class Uncertainty:
    """How sure the figures are.

    Attributes:
        ci_level: the level of every interval (0.95: 95 %).
        bootstrap_samples: resamples of the sensors for the pooled intervals.
        seed: the bootstrap's random seed.
    """

    ci_level: float = 0.95
    bootstrap_samples: int = 1000
    seed: int = 0


@dataclasses.dataclass
class Report:
    """What ``metrics.json`` holds (``summary``) and what the other files show."""

    summary: Dict[str, object]
    hists: Dict[str, Dict[str, np.ndarray]]  # split -> predictor -> HIST_BINS^2 counts
    per_sensor_rows: List[Dict[str, object]]
    series: Dict[str, List[Dict[str, object]]]  # sensor_id -> points
    group_rows: List[Dict[str, object]] = dataclasses.field(default_factory=list)


def metrics_row(element, ci_level: float = 0.95) -> Dict[str, object]:
    (split, sensor_id, predictor), stats = element
    return {"split": split, "sensor_id": sensor_id, "network": network_of(sensor_id),
            "predictor": predictor, **stats.metrics(ci_level)}


def group_row(element, ci_level: float = 0.95) -> Dict[str, object]:
    (split, breakdown, group, predictor), stats = element
    return {"split": split, "breakdown": breakdown, "group": group, "predictor": predictor,
            **stats.metrics(ci_level)}


ANOMALY_KEYS = ("n_anom", "r_anom", "ubrmse_anom")


def _with_anomalies(sensor_rows, skills) -> List[Dict[str, object]]:
    by_sensor = {(s["split"], s["sensor_id"]): s["anomaly"] for s in skills}
    out = []
    for r in sensor_rows:
        anomaly = by_sensor.get((r["split"], r["sensor_id"]), {}).get(r["predictor"], {})
        out.append({**r, **{k: anomaly.get(k) for k in ANOMALY_KEYS}})
    return out


#: Fewer sensors than this in a paired comparison: no claim of significance
#: (a bootstrap over a handful of sensors gives intervals that mean little).
MIN_SENSORS_FOR_SIGNIFICANCE = 10


def paired_comparison(skills, min_samples: int, uncertainty: Uncertainty,
                      reference: str) -> Dict[str, Dict[str, object]]:
    """``reference`` against each other predictor on the same pairs, per split:
    the mean over sensors (with at least ``min_samples`` common pairs) of the
    difference in r (reference minus baseline: > 0 is better) and in ubRMSE
    (< 0 is better), each with a bootstrap interval over sensors, the share of
    sensors where the reference is better, and whether the interval excludes
    no improvement (claimed only from ``MIN_SENSORS_FOR_SIGNIFICANCE`` sensors on)."""
    diffs: Dict[Tuple[str, str], Dict[str, list]] = {}
    for skill in sorted(skills, key=lambda s: (s["split"], s["sensor_id"])):
        for baseline, p in skill["paired"].items():
            if p["n"] < min_samples:
                continue
            d = diffs.setdefault((skill["split"], baseline), {"r": [], "ubrmse": []})
            for metric in ("r", "ubrmse"):
                ref, base = p[f"{metric}_reference"], p[f"{metric}_baseline"]
                if ref is not None and base is not None:
                    d[metric].append(ref - base)
    out: Dict[str, Dict[str, object]] = {}
    u = uncertainty
    for (split, baseline), d in sorted(diffs.items()):
        entry: Dict[str, object] = {"reference": reference}
        for metric, better in (("r", 1.0), ("ubrmse", -1.0)):
            values = np.asarray(d[metric], dtype=np.float64)
            lower, upper = bootstrap_interval(values, np.mean, u.bootstrap_samples, u.ci_level,
                                              u.seed)
            entry.update({
                f"{metric}_sensors": len(values),
                f"{metric}_diff_mean": float(values.mean()) if len(values) else None,
                f"{metric}_diff_ci_lower": lower, f"{metric}_diff_ci_upper": upper,
                f"share_{metric}_better": float(np.mean(values * better > 0)) if len(values) else None,
                f"{metric}_better_significant": bool(
                    lower is not None and len(values) >= MIN_SENSORS_FOR_SIGNIFICANCE
                    and (lower > 0 if better > 0 else upper < 0))})
        out.setdefault(split, {})[baseline] = entry
    return out


def _nest(items, depth: int) -> Dict:
    """``[((a, b), v), ...]`` -> ``{a: {b: v}}`` (depth 2) or three levels (depth 3)."""
    out: Dict = {}
    for key, value in items:
        d = out
        for k in key[:depth - 1]:
            d = d.setdefault(k, {})
        d[key[depth - 1]] = value
    return out


ROW_STATUSES = ("evaluated", "no_label", "no_prediction", "no_split")


def build_report(_, pooled, networks, sensor_rows, hists, series_points, skills=(), groups=(),
                 statuses=(), years=(), collisions=(), *,
                 min_samples: int, table_splits: List[str],
                 uncertainty: Uncertainty = Uncertainty(), reference: str = "model",
                 anomaly_window_days: Optional[float] = None) -> Report:
    """The side inputs of ``Evaluate`` -> the ``Report`` (``years``:
    ``(year, labelled rows)`` pairs, for the time split's checks;
    ``collisions``: ``(shard name, examples)`` of input shard names shared by
    different examples, see ``duplicates.collision_summary``)."""
    u = uncertainty
    sensor_rows = _with_anomalies(sensor_rows, skills)
    per_sensor_summary: Dict[str, Dict[str, object]] = {}
    by_split_pred: Dict[Tuple[str, str], list] = {}
    for r in sensor_rows:
        by_split_pred.setdefault((r["split"], r["predictor"]), []).append(r)
    for (split, predictor), rows in by_split_pred.items():
        per_sensor_summary.setdefault(split, {})[predictor] = summarise_sensors(
            rows, min_samples, u.ci_level, u.bootstrap_samples, u.seed)
    pooled_metrics = _nest([(k, s.metrics(u.ci_level)) for k, s in pooled], 2)
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
        "per_network": _nest([(k, s.metrics(u.ci_level)) for k, s in networks], 3),
        "paired": paired_comparison(skills, min_samples, u, reference),
        "rows": {status: dict(statuses).get(status, 0) for status in ROW_STATUSES},
        "labelled_rows_by_year": {str(year): n for year, n in sorted(years)},
        "ci_level": u.ci_level, "bootstrap_samples": u.bootstrap_samples,
        "bootstrap_seed": u.seed, "anomaly_window_days": anomaly_window_days,
        "min_samples_per_sensor": min_samples,
        "table_splits": [s for s in table_splits if s in pooled_metrics] or all_splits,
        "all_splits": all_splits,
        "pairs_by_split": pairs_by_split,
        "sensors_by_split": sensors_by_split,
        **collision_summary(collisions),
    }
    return Report(report, _nest(list(hists), 2), list(sensor_rows), series, list(groups))


def empty_time_splits(report: Dict[str, object], splits) -> Optional[str]:
    """With a time split (``splits.test_years``), the held-out split asked
    for that has no labelled pair, named with the years the data spans, or
    None.

    Args:
        report: the report's summary (its ``pairs`` and ``years``).
        splits: the split rule.
    """
    asked = [("test", splits.test_years)] + (
        [("validation", splits.validation_years)] if splits.validation_years else [])
    empty = [(name, years) for name, years in asked
             if not report.get("pairs_by_split", {}).get(name)]
    if not empty:
        return None
    spans = sorted(int(y) for y in report.get("labelled_rows_by_year", {}))
    data = (f"the labelled data spans {spans[0]}-{spans[-1]}" if spans
            else "no labelled row has a timestamp")
    return "; ".join(f"the {name} split ({', '.join(map(str, years))}) has no labelled "
                     f"example" for name, years in empty) + f": {data}"
