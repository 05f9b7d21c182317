"""Rendering the evaluation: ``metrics.md``, ``metrics.json``, ``per_sensor.csv``, PNG plots.

Everything here works on the small aggregated results of ``pipelines.evaluate``
(per split/predictor statistics, per-sensor metrics, 2-D histograms, the
series of a few sensors), never on all rows. Files are written through Beam's
``FileSystems`` (local or ``gs://``), each under a temporary name then renamed.
"""

import csv
import io
import json
import posixpath
from typing import Dict, List, Optional

from apache_beam.io.filesystems import FileSystems

from transforms.dataset import files
from transforms.evaluation import plots
from transforms.evaluation.plots import DISPLAY, predictor_order
from transforms.evaluation.report import MIN_SENSORS_FOR_SIGNIFICANCE, Report

_CI_COLUMNS = ("bias_ci_lower", "bias_ci_upper", "ubrmse_ci_lower", "ubrmse_ci_upper",
               "r_ci_lower", "r_ci_upper")
PER_SENSOR_COLUMNS = ("split", "sensor_id", "network", "predictor", "n", "bias", "rmse",
                      "ubrmse", "r", *_CI_COLUMNS, "n_anom", "r_anom", "ubrmse_anom")
PER_GROUP_COLUMNS = ("split", "breakdown", "group", "predictor", "n", "bias", "rmse", "ubrmse",
                     "r", *_CI_COLUMNS)


def _fmt(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.3f}"


def markdown_table(metrics: Dict[str, Dict[str, Dict[str, object]]], splits: List[str],
                   ubrmse_key: str, rmse_key: str, r_key: str) -> str:
    """A table laid out like the published README's: one row per predictor,
    ubRMSE / RMSE / correlation for each split."""
    predictors = predictor_order({p for s in splits for p in metrics.get(s, {})})
    head = "| Experiment | " + " | ".join(
        f"{s.capitalize()} ubRMSE | {s.capitalize()} RMSE | {s.capitalize()} Correlation"
        for s in splits) + " |"
    lines = [head, "| --- |" + " ---: |" * (3 * len(splits))]
    for p in predictors:
        cells = []
        for s in splits:
            m = metrics.get(s, {}).get(p, {})
            cells += [_fmt(m.get(ubrmse_key)), _fmt(m.get(rmse_key)), _fmt(m.get(r_key))]
        lines.append(f"| {DISPLAY.get(p, p)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _with_ci(m: Dict[str, object], key: str, lower: str, upper: str) -> str:
    if m.get(key) is None:
        return "–"
    if m.get(lower) is None or m.get(upper) is None:
        return f"{m[key]:.3f}"
    return f"{m[key]:.3f} [{m[lower]:.3f}, {m[upper]:.3f}]"


def interval_table(metrics: Dict[str, Dict[str, Dict[str, object]]], splits: List[str],
                   keys: List[tuple], names: List[str]) -> str:
    """One row per predictor, ``figure [lower, upper]`` for each of ``keys``
    (``(key, lower, upper)``) and each split."""
    predictors = predictor_order({p for s in splits for p in metrics.get(s, {})})
    head = "| Experiment | " + " | ".join(f"{s.capitalize()} {n}" for s in splits for n in names) + " |"
    lines = [head, "| --- |" + " ---: |" * (len(keys) * len(splits))]
    for p in predictors:
        cells = [_with_ci(metrics.get(s, {}).get(p, {}), *k) for s in splits for k in keys]
        lines.append(f"| {DISPLAY.get(p, p)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ci(metric: str):
    return (metric, f"{metric}_ci_lower", f"{metric}_ci_upper")


def _boot(metric: str, statistic: str):
    key = f"{metric}_{statistic}"
    return (key, f"{key}_ci_lower", f"{key}_ci_upper")


def paired_lines(report: Dict[str, object]) -> List[str]:
    level = f"{report['ci_level']:.0%}"
    lines = []
    for split in report["table_splits"]:
        for baseline, p in sorted(report.get("paired", {}).get(split, {}).items()):
            name, ref = DISPLAY.get(baseline, baseline), DISPLAY.get(p["reference"], p["reference"])
            if not p["r_sensors"]:
                continue
            if p["r_sensors"] < MIN_SENSORS_FOR_SIGNIFICANCE:
                verdict = (f"not assessed: {p['r_sensors']} sensors are too few (at least "
                           f"{MIN_SENSORS_FOR_SIGNIFICANCE} are needed)")
            else:
                verdict = ("significant" if p["r_better_significant"]
                           and p["ubrmse_better_significant"] else "not significant")
            lines.append(
                f"- {split}, {ref} vs {name} ({p['r_sensors']} sensors, same pairs): "
                f"r {p['r_diff_mean']:+.3f} {_pair(p, 'r')}, better on "
                f"{p['share_r_better']:.0%} of sensors; ubRMSE {p['ubrmse_diff_mean']:+.3f} "
                f"{_pair(p, 'ubrmse')}, better on {p['share_ubrmse_better']:.0%}. "
                + (f"The improvement is **{verdict}** at the {level} level." if not
                   verdict.startswith("not assessed") else f"Significance **{verdict}**."))
    return lines or ["- no sensor has both predictions with enough pairs."]


def _pair(p, metric):
    lower, upper = p[f"{metric}_diff_ci_lower"], p[f"{metric}_diff_ci_upper"]
    return "" if lower is None else f"[{lower:+.3f}, {upper:+.3f}]"


def render_markdown(report: Dict[str, object]) -> str:
    splits = report["table_splits"]
    pooled = report["pooled"]
    per_sensor = report["per_sensor_summary"]
    level = f"{report.get('ci_level', 0.95):.0%}"
    counts = ", ".join(f"{s}: {report['pairs_by_split'].get(s, 0)} labelled examples, "
                       f"{report['sensors_by_split'].get(s, 0)} sensors" for s in splits)
    sections = [
        "# Soil-moisture evaluation",
        f"Predictions against the in-situ label ({counts}).",
        "Rows read: " + ", ".join(f"{n} {status.replace('_', ' ')}"
                                  for status, n in report.get("rows", {}).items()) + ".",
        "## Pooled over all examples",
        markdown_table(pooled, splits, "ubrmse", "rmse", "r"),
        "Every predictor of a table is compared on exactly the same pairs: a labelled row "
        "lacking any predictor's value, or holding a non-finite label or value, is left out "
        "for all of them (listed in `bad_rows.jsonl`).",
        f"## Per-sensor averages (mean over sensors with at least "
        f"{report['min_samples_per_sensor']} pairs)",
        markdown_table(per_sensor, splits, "ubrmse_mean", "rmse_mean", "r_mean"),
        "## Per-sensor medians",
        markdown_table(per_sensor, splits, "ubrmse_median", "rmse_median", "r_median"),
        f"## Intervals ({level})",
        "Pooled, analytical (bias: Student's t; ubRMSE: chi-squared, n - 1 degrees of "
        "freedom; r: Fisher's z), as pytesmo's `with_analytical_ci`:",
        interval_table(pooled, splits, [_ci("bias"), _ci("ubrmse"), _ci("r")],
                       ["bias", "ubRMSE", "r"]),
        f"Per-sensor mean and median, bootstrap over sensors "
        f"({report.get('bootstrap_samples', 0)} resamples, seed {report.get('bootstrap_seed', 0)}):",
        interval_table(per_sensor, splits, [_boot("ubrmse", "mean"), _boot("r", "mean"),
                                            _boot("ubrmse", "median"), _boot("r", "median")],
                       ["mean ubRMSE", "mean r", "median ubRMSE", "median r"]),
        f"## Anomaly skill (anomalies from a {report.get('anomaly_window_days') or 35:g}-day "
        "centred moving average of each series, per sensor)",
        interval_table(per_sensor, splits, [_boot("ubrmse_anom", "mean"), _boot("r_anom", "mean")],
                       ["mean anomaly ubRMSE", "mean anomaly r"]),
        "Sensors left out for a series too short to have anomalies: " + ", ".join(
            f"{s}: {max((m.get('sensors_without_anomaly', 0) for m in per_sensor.get(s, {}).values()), default=0)}"
            for s in splits) + ".",
        "## Paired comparison (per-sensor r and ubRMSE on exactly the same pairs)",
        "\n".join(paired_lines(report)),
        "## Breakdowns",
        "Pooled figures per network, land-cover class at the sensor, age of the Sentinel-1 and "
        "Sentinel-2 inputs, month and season: `per_group.csv`, plotted in `breakdown_*.png`.",
    ]
    return "\n\n".join(sections) + "\n"


def _csv(rows: List[Dict[str, object]], columns, order) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in sorted(rows, key=order):
        w.writerow(["" if r.get(c) is None else (repr(r[c]) if isinstance(r[c], float) else r[c])
                    for c in columns])
    return buf.getvalue()


def per_sensor_csv(rows: List[Dict[str, object]]) -> str:
    return _csv(rows, PER_SENSOR_COLUMNS, lambda r: (r["split"], r["sensor_id"], r["predictor"]))


def per_group_csv(rows: List[Dict[str, object]]) -> str:
    return _csv(rows, PER_GROUP_COLUMNS,
                lambda r: (r["split"], r["breakdown"], r["group"], r["predictor"]))


def write_report(assembled: Report, output_dir: str) -> List[str]:
    """Write every output file; returns their paths."""
    report, hists = assembled.summary, assembled.hists
    per_sensor_rows, series = assembled.per_sensor_rows, assembled.series
    join = lambda name: FileSystems.join(output_dir, name)  # noqa: E731
    written = {}
    written[join("metrics.md")] = render_markdown(report).encode()
    written[join("per_sensor.csv")] = per_sensor_csv(per_sensor_rows).encode()
    written[join("per_group.csv")] = per_group_csv(assembled.group_rows).encode()
    for breakdown in sorted({r["breakdown"] for r in assembled.group_rows}):
        written[join(f"breakdown_{breakdown}.png")] = plots.png(plots.breakdown_figure(
            assembled.group_rows, breakdown, report["table_splits"], report["ci_level"]))
    for predictor in predictor_order({p for s in hists for p in hists[s]}):
        written[join(f"scatter_{predictor}.png")] = plots.png(plots.density_figure(
            hists, predictor, report["all_splits"], report["pooled"]))
    for metric in ("r", "ubrmse"):
        written[join(f"per_sensor_{metric}.png")] = plots.png(plots.sensor_distribution_figure(
            per_sensor_rows, metric, report["min_samples_per_sensor"]))
    if series:
        written[join("timeseries.png")] = plots.png(plots.series_figure(series))
    report["files"] = sorted(posixpath.basename(path) for path in
                             [*written, join("metrics.json")])
    written[join("metrics.json")] = json.dumps(report, indent=2, sort_keys=True).encode()
    for path, data in written.items():
        files.write_bytes_atomically(path, data)
    return sorted(written)


#: Every file name a report may have (the plots by pattern), and
#: ``bad_rows.jsonl``, which the pipeline writes beside them.
REPORT_FILES = ("metrics.md", "metrics.json", "per_sensor.csv", "per_group.csv",
                "bad_rows.jsonl", "breakdown_*.png", "scatter_*.png", "per_sensor_*.png",
                "timeseries.png")


def stale_report_files(output_dir: str, written: List[str]) -> List[str]:
    """Report files in ``output_dir`` that this run did not write (names in
    ``written``): an earlier run's plots of a predictor or breakdown this
    run has not. Listed, not removed."""
    found = FileSystems.match([FileSystems.join(output_dir, name) for name in REPORT_FILES])
    names = {posixpath.basename(m.path) for f in found for m in f.metadata_list}
    return sorted(names - set(written) - {"bad_rows.jsonl"})
