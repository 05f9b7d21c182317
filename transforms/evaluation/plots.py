"""The evaluation's figures, drawn from the report's small aggregates.

Each ``*_figure`` function returns a matplotlib figure (tests read its
texts); ``png`` renders one. The rules they follow (category order, titles,
small groups, gaps) are the plain functions of ``plot_rules``. Every figure
uses constrained layout with its legend outside the axes, so neither
titles nor legends cover each other or the data.
"""

import io
from typing import Dict, List, Sequence

import numpy as np

from transforms.evaluation.metrics import HIST_BINS
from transforms.evaluation.plot_rules import (
    MAX_SERIES_GAP_MS, MIN_GROUP_PAIRS, break_gaps, breakdown_title, category_label,
    category_order, count_ticks, panel_text, slant_labels, split_title, tick_label)

DISPLAY = {"smap": "SMAP", "gldas": "GLDAS", "model": "Model"}
_SPLIT_MARKERS = {"train": "v", "validation": "o", "test": "s", "all": "o"}


def predictor_order(predictors) -> List[str]:
    """SMAP, GLDAS, the extra columns (alphabetically), then the model.

    Args:
        predictors: predictor names, in any order.
    """
    first = [p for p in ("smap", "gldas") if p in predictors]
    rest = sorted(p for p in predictors if p not in ("smap", "gldas", "model"))
    return first + rest + (["model"] if "model" in predictors else [])


def _matplotlib():
    """matplotlib with the file-only Agg backend (workers have no display)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return matplotlib, plt


def png(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed.

    Args:
        fig: a matplotlib figure.
    """
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _splits_in(splits: Sequence[str]) -> List[str]:
    order = ("train", "validation", "test", "all")
    return [s for s in order if s in splits] + sorted(set(splits) - set(order))


def density_figure(hists: Dict[str, Dict[str, np.ndarray]], predictor: str,
                   splits: Sequence[str], pooled: Dict[str, Dict[str, Dict[str, object]]]):
    """Predicted against in-situ density, one panel per split, each with the
    1:1 line and its pooled r, ubRMSE and n.

    Args:
        hists: split -> predictor -> ``HIST_BINS`` x ``HIST_BINS`` counts
            (rows: label, columns: prediction).
        predictor: the predictor plotted.
        splits: the splits to show, when they have the predictor.
        pooled: split -> predictor -> pooled figures (``n``, ``r``, ``ubrmse``).
    """
    matplotlib, plt = _matplotlib()
    shown = [s for s in splits if predictor in hists.get(s, {})]
    name = DISPLAY.get(predictor, predictor)
    fig, axes = plt.subplots(1, max(1, len(shown)), figsize=(4.5 * max(1, len(shown)), 4.4),
                             squeeze=False, layout="constrained")
    edges = np.linspace(0, 1, HIST_BINS + 1)
    for ax, split in zip(axes[0], shown):
        counts = hists[split][predictor].astype(float)
        largest = max(counts.max(), 2.0)
        mesh = ax.pcolormesh(edges, edges, np.ma.masked_equal(counts, 0), cmap="viridis",
                             norm=matplotlib.colors.LogNorm(vmin=1, vmax=largest))
        ax.plot([0, 1], [0, 1], color="tab:red", ls="--", lw=1.2)
        ax.annotate("1:1", (0.9, 0.9), xytext=(-14, 2), textcoords="offset points",
                    color="tab:red", fontsize=8, rotation=45)
        ax.text(0.03, 0.97, panel_text({"n": int(counts.sum()),
                                        **pooled.get(split, {}).get(predictor, {})}),
                transform=ax.transAxes, va="top", ha="left", fontsize=9,
                bbox={"boxstyle": "round", "fc": "white", "ec": "0.7", "alpha": 0.9})
        ax.set(xlabel=f"{name} (m³/m³)", ylabel="in-situ (m³/m³)", xlim=(0, 1), ylim=(0, 1),
               aspect="equal", title="all examples" if split == "all" else f"{split} split"
               + (" (the model was fitted on it)" if split == "train" and predictor == "model"
                  else ""))
        bar = fig.colorbar(mesh, ax=ax, label="examples per cell", shrink=0.85)
        ticks = count_ticks(largest)
        bar.set_ticks(ticks, labels=[str(t) for t in ticks])
        bar.minorticks_off()
    fig.suptitle(f"{name} against the in-situ label ({split_title(shown)})")
    return fig


def _group_n(rows, split: str, group: str) -> int:
    return max((r["n"] for r in rows if r["split"] == split and r["group"] == group), default=0)


def breakdown_figure(rows: List[Dict[str, object]], breakdown: str, splits: Sequence[str],
                     ci_level: float = 0.95):
    """ubRMSE (top) and r (bottom) per group of one breakdown, with their
    intervals, for each predictor and split; groups in natural order
    (``category_order``), each tick with its pairs per split; groups with
    fewer than ``MIN_GROUP_PAIRS`` pairs are not plotted, as the figure says.

    Args:
        rows: ``per_group.csv``'s rows (every breakdown).
        breakdown: the breakdown plotted.
        splits: the splits to show, when they have rows.
        ci_level: the intervals' level, for the figure's note.
    """
    _, plt = _matplotlib()
    shown = [r for r in rows if r["breakdown"] == breakdown and r["split"] in splits]
    present = _splits_in({r["split"] for r in shown})
    groups = category_order(breakdown, [r["group"] for r in shown])
    predictors = predictor_order({r["predictor"] for r in shown})
    series = [(s, p) for s in present for p in predictors]
    width = min(16.0, max(7.0, 0.32 * len(groups) * max(1, len(series)) + 2.5))
    fig, axes = plt.subplots(2, 1, figsize=(width, 6.4), sharex=True, layout="constrained")
    step = min(0.15, 0.8 / max(1, len(series)))
    colours = {p: f"C{k}" for k, p in enumerate(predictors)}
    for ax, metric in zip(axes, ("ubrmse", "r")):
        for k, (split, p) in enumerate(series):
            by_group = {r["group"]: r for r in shown if r["split"] == split and r["predictor"] == p}
            xs, ys, errs = [], [], [[], []]
            for i, g in enumerate(groups):
                r = by_group.get(g)
                if r is None or r.get(metric) is None or r["n"] < MIN_GROUP_PAIRS:
                    continue
                lo, hi = r.get(f"{metric}_ci_lower"), r.get(f"{metric}_ci_upper")
                xs.append(i + (k - (len(series) - 1) / 2) * step)
                ys.append(r[metric])
                errs[0].append(r[metric] - lo if lo is not None else 0)
                errs[1].append(hi - r[metric] if hi is not None else 0)
            if xs:
                ax.errorbar(xs, ys, yerr=errs, fmt=_SPLIT_MARKERS.get(split, "o"), ms=4,
                            capsize=2, color=colours[p],
                            label=DISPLAY.get(p, p) + (f" ({split})" if len(present) > 1 else ""))
        ax.set_ylabel("ubRMSE (m³/m³)" if metric == "ubrmse" else "r")
        ax.grid(axis="y", lw=0.4, alpha=0.5)
    pairs = {g: [_group_n(shown, s, g) for s in present] for g in groups}
    slanted = slant_labels([category_label(breakdown, g) for g in groups])
    axes[1].set_xticks(range(len(groups)))
    axes[1].set_xticklabels([tick_label(breakdown, g, pairs[g], slanted) for g in groups],
                            rotation=30 if slanted else 0, ha="right" if slanted else "center",
                            rotation_mode="anchor", fontsize=8)
    for tick, g in zip(axes[1].get_xticklabels(), groups):
        if max(pairs[g], default=0) < MIN_GROUP_PAIRS:
            tick.set_color("0.55")  # not plotted
    axes[1].set_xlim(-0.6, len(groups) - 0.4)
    fig.suptitle(f"Skill by {breakdown_title(breakdown)} ({split_title(present)})")
    fig.supxlabel(f"n: labelled pairs per group ({'/'.join(present) or 'none'}); groups with "
                  f"fewer than {MIN_GROUP_PAIRS} pairs (grey) are not plotted; bars: "
                  f"{ci_level:.0%} intervals", fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    return fig


def sensor_distribution_figure(rows: List[Dict[str, object]], metric: str, min_samples: int):
    """The distribution over held-out sensors (every split but train) of a
    per-sensor figure, for each predictor, with each one's sensors and median.

    Args:
        rows: ``per_sensor.csv``'s rows.
        metric: ``r`` or ``ubrmse``.
        min_samples: sensors with fewer pairs are left out.
    """
    from matplotlib.ticker import MaxNLocator

    _, plt = _matplotlib()
    used = [r for r in rows if r["n"] >= min_samples and r[metric] is not None
            and r["split"] != "train"]
    fig, ax = plt.subplots(figsize=(7.5, 4), layout="constrained")
    top = max([0.25] + [r[metric] for r in used]) if metric != "r" else 1.0
    bins = np.linspace(-1, 1, 41) if metric == "r" else np.linspace(0, np.ceil(top * 20) / 20, 41)
    for p in predictor_order({r["predictor"] for r in used}):
        values = [r[metric] for r in used if r["predictor"] == p]
        ax.hist(values, bins=bins, histtype="step", lw=1.5,
                label=f"{DISPLAY.get(p, p)}: {len(values)} sensors, median {np.median(values):.3f}")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    word = "r" if metric == "r" else "ubRMSE"
    ax.set(xlabel="per-sensor " + ("correlation r" if metric == "r" else "ubRMSE (m³/m³)"),
           ylabel="sensors",
           title=f"Per-sensor {word}, {split_title({r['split'] for r in used})} sensors "
                 f"with at least {min_samples} pairs")
    if used:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    else:
        ax.text(0.5, 0.5, "no held-out sensor has enough pairs", transform=ax.transAxes,
                ha="center", va="center")
    return fig


def series_figure(series: Dict[str, List[Dict[str, object]]]):
    """The in-situ label and each predictor over time, one panel per sensor
    (most examples first), lines broken across gaps longer than
    ``MAX_SERIES_GAP_MS`` (``break_gaps``).

    Args:
        series: sensor_id -> points (``timestamp``, ``label``, ``split``,
            ``predictors``).
    """
    matplotlib, plt = _matplotlib()
    import matplotlib.dates as mdates

    sensors = sorted(series, key=lambda s: (-len(series[s]), s))
    fig, axes = plt.subplots(len(sensors), 1, figsize=(10, 2.4 * len(sensors) + 0.6),
                             squeeze=False, layout="constrained")
    legend = {}
    for ax, sensor in zip(axes[:, 0], sensors):
        points = sorted(series[sensor], key=lambda p: p["timestamp"])
        t = [p["timestamp"] for p in points]
        lines = [("in-situ", {"color": "k", "lw": 1.4, "ms": 5, "zorder": 3},
                  [p["label"] for p in points])] + [
            (DISPLAY.get(name, name), {"color": f"C{k}", "lw": 0.8, "ms": 4},
             [p["predictors"].get(name, np.nan) for p in points])
            for k, name in enumerate(predictor_order({key for p in points for key in p["predictors"]}))]
        for label, style, values in lines:
            times, values = break_gaps(t, values, MAX_SERIES_GAP_MS)
            (line,) = ax.plot(times.astype(np.int64).astype("datetime64[ms]"), values, ".-",
                              label=label, **style)
            legend.setdefault(label, line)
        splits = {p.get("split") for p in points} - {None}
        where = "" if splits <= {"all"} else (
            f"{split_title(splits)} split{'s' if len(splits) > 1 else ''}, ")
        ax.set_title(f"{sensor}: {where}n = {len(points)} examples"
                     + (" (the model was fitted on it)" if "train" in splits else ""), fontsize=10)
        ax.set_ylabel("m³/m³")
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    fig.legend(list(legend.values()), list(legend), loc="outside right upper", fontsize=8)
    fig.supxlabel(f"lines are not drawn across gaps longer than "
                  f"{MAX_SERIES_GAP_MS / 86400e3:g} days", fontsize=8)
    return fig
