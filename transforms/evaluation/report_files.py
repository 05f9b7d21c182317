"""Rendering the evaluation: ``metrics.md``, ``metrics.json``, ``per_sensor.csv``, PNG plots.

Everything here works on the small aggregated results of ``pipelines.evaluate``
(per split/predictor statistics, per-sensor metrics, 2-D histograms, the
series of a few sensors), never on all rows. Files are written through Beam's
``FileSystems`` (local or ``gs://``), each under a temporary name then renamed.
"""

import csv
import io
import json
from typing import Dict, List, Optional

import numpy as np
from apache_beam.io.filesystems import FileSystems

from transforms.dataset import files
from transforms.evaluation.metrics import HIST_BINS
from transforms.evaluation.report import Report

DISPLAY = {"smap": "SMAP", "gldas": "GLDAS", "model": "Model"}
PER_SENSOR_COLUMNS = ("split", "sensor_id", "network", "predictor", "n", "bias", "rmse",
                      "ubrmse", "r")


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


def render_markdown(report: Dict[str, object]) -> str:
    splits = report["table_splits"]
    pooled = report["pooled"]
    per_sensor = report["per_sensor_summary"]
    counts = ", ".join(f"{s}: {report['pairs_by_split'].get(s, 0)} labelled examples, "
                       f"{report['sensors_by_split'].get(s, 0)} sensors" for s in splits)
    return "\n\n".join([
        "# Soil-moisture evaluation",
        f"Predictions against the in-situ label ({counts}).",
        "## Pooled over all examples",
        markdown_table(pooled, splits, "ubrmse", "rmse", "r"),
        f"## Per-sensor averages (mean over sensors with at least "
        f"{report['min_samples_per_sensor']} pairs)",
        markdown_table(per_sensor, splits, "ubrmse_mean", "rmse_mean", "r_mean"),
        "## Per-sensor medians",
        markdown_table(per_sensor, splits, "ubrmse_median", "rmse_median", "r_median"),
    ]) + "\n"


def per_sensor_csv(rows: List[Dict[str, object]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(PER_SENSOR_COLUMNS)
    for r in sorted(rows, key=lambda r: (r["split"], r["sensor_id"], r["predictor"])):
        w.writerow(["" if r[c] is None else (f"{r[c]:.6g}" if isinstance(r[c], float) else r[c])
                    for c in PER_SENSOR_COLUMNS])
    return buf.getvalue()


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
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 4), squeeze=False)
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
    ax.legend(fontsize=8)
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
        ax.set(title=f"{sensor} ({len(points)} examples)", ylabel="m³/m³")
        ax.tick_params(axis="x", labelrotation=15, labelsize=8)
        ax.legend(fontsize=7, ncol=4)
    return _png(fig)


def write_report(assembled: Report, output_dir: str) -> List[str]:
    """Write every output file; returns their paths."""
    report, hists = assembled.summary, assembled.hists
    per_sensor_rows, series = assembled.per_sensor_rows, assembled.series
    join = lambda name: FileSystems.join(output_dir, name)  # noqa: E731
    written = {}
    written[join("metrics.md")] = render_markdown(report).encode()
    written[join("metrics.json")] = json.dumps(report, indent=2, sort_keys=True).encode()
    written[join("per_sensor.csv")] = per_sensor_csv(per_sensor_rows).encode()
    for predictor in predictor_order({p for s in hists for p in hists[s]}):
        written[join(f"scatter_{predictor}.png")] = plot_density(hists, predictor, report["all_splits"])
    for metric in ("r", "ubrmse"):
        written[join(f"per_sensor_{metric}.png")] = plot_sensor_distributions(
            per_sensor_rows, metric, report["min_samples_per_sensor"])
    if series:
        written[join("timeseries.png")] = plot_series(series)
    for path, data in written.items():
        files.write_bytes_atomically(path, data)
    return sorted(written)
