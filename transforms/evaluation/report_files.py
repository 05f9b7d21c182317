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

import numpy as np
from apache_beam.io.filesystems import FileSystems

from transforms.dataset import files
from transforms.evaluation.metrics import HIST_BINS
from transforms.evaluation.report import MIN_SENSORS_FOR_SIGNIFICANCE, Report

DISPLAY = {"smap": "SMAP", "gldas": "GLDAS", "model": "Model"}
_CI_COLUMNS = ("bias_ci_lower", "bias_ci_upper", "ubrmse_ci_lower", "ubrmse_ci_upper",
               "r_ci_lower", "r_ci_upper")
PER_SENSOR_COLUMNS = ("split", "sensor_id", "network", "predictor", "n", "bias", "rmse",
                      "ubrmse", "r", *_CI_COLUMNS, "n_anom", "r_anom", "ubrmse_anom")
PER_GROUP_COLUMNS = ("split", "breakdown", "group", "predictor", "n", "bias", "rmse", "ubrmse",
                     "r", *_CI_COLUMNS)


def _fmt(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.3f}"


def predictor_order(predictors) -> List[str]:
    first = [p for p in ("smap", "gldas") if p in predictors]
    rest = sorted(p for p in predictors if p not in ("smap", "gldas", "model"))
    return first + rest + (["model"] if "model" in predictors else [])


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


def plot_breakdown(rows: List[Dict[str, object]], breakdown: str, splits: List[str]) -> bytes:
    """ubRMSE and r per group of one breakdown, with their intervals, for each predictor."""
    matplotlib, plt = _matplotlib()

    shown = [r for r in rows if r["breakdown"] == breakdown and r["split"] in splits]
    groups = sorted({r["group"] for r in shown})
    predictors = predictor_order({r["predictor"] for r in shown})
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 0.7 * len(groups) * len(predictors)), 4),
                             squeeze=False, constrained_layout=True)
    width = 0.8 / max(1, len(predictors) * len(splits))
    for ax, metric in zip(axes[0], ("ubrmse", "r")):
        k = 0
        for split in splits:
            for p in predictors:
                by_group = {r["group"]: r for r in shown if r["split"] == split and r["predictor"] == p}
                xs, ys, errs, ns = [], [], [[], []], []
                for i, g in enumerate(groups):
                    r = by_group.get(g)
                    if r is None or r.get(metric) is None:
                        continue
                    lo, hi = r.get(f"{metric}_ci_lower"), r.get(f"{metric}_ci_upper")
                    xs.append(i + (k - (len(predictors) * len(splits) - 1) / 2) * width)
                    ys.append(r[metric])
                    ns.append(r["n"])
                    errs[0].append(r[metric] - lo if lo is not None else 0)
                    errs[1].append(hi - r[metric] if hi is not None else 0)
                if xs:
                    ax.errorbar(xs, ys, yerr=errs, fmt="o", ms=4, capsize=2,
                                label=f"{DISPLAY.get(p, p)} ({split})")
                    for x, y, n in zip(xs, ys, ns):  # how many pairs each point stands for
                        ax.annotate(f"n={n}", (x, y), textcoords="offset points", xytext=(3, 3),
                                    fontsize=5, color="dimgray")
                k += 1
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=7)
        ax.set(title=f"{'ubRMSE (m³/m³)' if metric == 'ubrmse' else 'r'} by {breakdown} "
                     f"({' and '.join(splits)} sensors)")
    _legend(axes[0][0], fontsize=7)
    return _png(fig)


def _legend(ax, **kwargs) -> None:
    """A legend when the axes have labelled artists (matplotlib warns otherwise)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _matplotlib():
    """matplotlib with the file-only Agg backend (workers have no display)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return matplotlib, plt


def plot_density(hists: Dict[str, Dict[str, np.ndarray]], predictor: str, splits: List[str]) -> bytes:
    matplotlib, plt = _matplotlib()

    shown = [s for s in splits if predictor in hists.get(s, {})]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 4), squeeze=False,
                             constrained_layout=True)  # colour bars beside, not over, the labels
    edges = np.linspace(0, 1, HIST_BINS + 1)
    for ax, split in zip(axes[0], shown):
        counts = hists[split][predictor].astype(float)
        mesh = ax.pcolormesh(edges, edges, np.ma.masked_equal(counts, 0), cmap="viridis",
                             norm=matplotlib.colors.LogNorm(vmin=1, vmax=max(counts.max(), 1)))
        ax.plot([0, 1], [0, 1], "w--", lw=0.8)
        ax.set(xlabel=f"{DISPLAY.get(predictor, predictor)} (m³/m³)", ylabel="in-situ (m³/m³)",
               title=f"{split}: n={int(counts.sum())}", xlim=(0, 1), ylim=(0, 1))
        fig.colorbar(mesh, ax=ax, label="examples")
    return _png(fig)


def plot_sensor_distributions(rows: List[Dict[str, object]], metric: str, min_samples: int) -> bytes:
    matplotlib, plt = _matplotlib()

    predictors = predictor_order({r["predictor"] for r in rows})
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(-1, 1, 41) if metric == "r" else np.linspace(0, 0.25, 41)
    for p in predictors:
        values = [r[metric] for r in rows if r["predictor"] == p and r["n"] >= min_samples
                  and r[metric] is not None and r["split"] != "train"]
        if values:
            ax.hist(values, bins=bins, histtype="step", lw=1.5,
                    label=f"{DISPLAY.get(p, p)} (median {np.median(values):.3f})")
    ax.set(xlabel="per-sensor " + ("correlation" if metric == "r" else "ubRMSE (m³/m³)"),
           ylabel="sensors", title=f"Per-sensor {metric} (validation + test sensors)")
    _legend(ax, fontsize=8)
    return _png(fig)


def plot_series(series: Dict[str, List[Dict[str, object]]]) -> bytes:
    matplotlib, plt = _matplotlib()

    sensors = sorted(series, key=lambda s: (-len(series[s]), s))
    fig, axes = plt.subplots(len(sensors), 1, figsize=(9, 2.6 * len(sensors)), squeeze=False,
                             constrained_layout=True)
    for ax, sensor in zip(axes[:, 0], sensors):
        points = sorted(series[sensor], key=lambda p: p["timestamp"])
        t = np.array([int(p["timestamp"]) for p in points], dtype="datetime64[ms]")
        ax.plot(t, [p["label"] for p in points], "k.-", lw=1, label="in-situ")
        for name in predictor_order({k for p in points for k in p["predictors"]}):
            ax.plot(t, [p["predictors"].get(name, np.nan) for p in points], ".-", lw=0.8,
                    label=DISPLAY.get(name, name))
        split = points[0].get("split")
        ax.set(title=f"{sensor}: {split} sensor, {len(points)} examples"
                     + (" (the model was fitted on it)" if split == "train" else ""),
               ylabel="m³/m³")
        ax.tick_params(axis="x", labelrotation=15, labelsize=8)
        _legend(ax, fontsize=7, ncol=4)
    return _png(fig)


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
        written[join(f"breakdown_{breakdown}.png")] = plot_breakdown(
            assembled.group_rows, breakdown, report["table_splits"])
    for predictor in predictor_order({p for s in hists for p in hists[s]}):
        written[join(f"scatter_{predictor}.png")] = plot_density(hists, predictor, report["all_splits"])
    for metric in ("r", "ubrmse"):
        written[join(f"per_sensor_{metric}.png")] = plot_sensor_distributions(
            per_sensor_rows, metric, report["min_samples_per_sensor"])
    if series:
        written[join("timeseries.png")] = plot_series(series)
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
