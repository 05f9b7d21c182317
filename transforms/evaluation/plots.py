"""The evaluation's figures, drawn from the report's small aggregates.

Each ``*_figure`` function returns a matplotlib figure (tests read its
texts); ``png`` renders one. The rules they follow (category order, titles,
small groups, gaps, axis limits, clipped intervals, dates) are the plain
functions of ``plot_rules``. Every figure uses constrained layout with its
legend outside the axes, so neither titles nor legends cover each other or
the data.
"""

import io
from typing import Dict, List, Sequence

import numpy as np

from transforms.evaluation.metrics import HIST_BINS
from transforms.evaluation.plot_rules import (
    MAX_SERIES_GAP_MS, MIN_GROUP_PAIRS, axis_limits, break_gaps, breakdown_title,
    category_label, category_order, clip_intervals, count_ticks, date_tick_labels, panel_text,
    slant_labels, split_title, swarm_offsets, tick_label)

DISPLAY = {"smap": "SMAP", "gldas": "GLDAS", "model": "Model"}
_SPLIT_MARKERS = {"train": "v", "validation": "o", "test": "s", "all": "o"}
#: Each metric's possible range and the smallest span of an axis showing it.
_RANGE = {"r": {"lowest": -1.0, "highest": 1.0, "min_span": 0.1},
          "ubrmse": {"lowest": 0.0, "highest": None, "min_span": 0.02}}


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
    Each panel's axis is set from the plotted values (``axis_limits``);
    intervals beyond it are clipped, their cut ends marked by a caret
    (``clip_intervals``), as the footnote says.

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
        plotted = [r for r in shown if r.get(metric) is not None and r["n"] >= MIN_GROUP_PAIRS]
        limits = axis_limits([r[metric] for r in plotted], **_RANGE[metric])
        for k, (split, p) in enumerate(series):
            by_group = {r["group"]: r for r in plotted
                        if r["split"] == split and r["predictor"] == p}
            xs = np.array([i + (k - (len(series) - 1) / 2) * step
                           for i, g in enumerate(groups) if g in by_group])
            if not len(xs):
                continue
            rows_k = [by_group[g] for g in groups if g in by_group]
            ys = np.array([r[metric] for r in rows_k], dtype=np.float64)
            lo, hi, cut_lo, cut_hi = clip_intervals([r.get(f"{metric}_ci_lower") for r in rows_k],
                                                    [r.get(f"{metric}_ci_upper") for r in rows_k],
                                                    limits)
            errs = np.clip(np.nan_to_num([ys - lo, hi - ys]), 0, None)
            # everything lies within the axis now: unclipped, no marker is cut in half
            ax.errorbar(xs, ys, yerr=errs, fmt=_SPLIT_MARKERS.get(split, "o"), ms=4,
                        color=colours[p], clip_on=False,
                        label=DISPLAY.get(p, p) + (f" ({split})" if len(present) > 1 else ""))
            for ends, cut, caret in ((hi, cut_hi, "^"), (lo, cut_lo, "v")):
                capped = ~cut & np.isfinite(ends)  # a cap where the interval ends, not the axis
                if capped.any():
                    ax.plot(xs[capped], ends[capped], ls="none", marker="_", ms=4,
                            color=colours[p], clip_on=False)
                if cut.any():  # (an empty unclipped collection spoils the layout)
                    ax.scatter(xs[cut], ends[cut], marker=caret, s=22, color=colours[p],
                               clip_on=False, zorder=3)
        ax.set_ylim(*limits)
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
                  f"fewer than {MIN_GROUP_PAIRS} pairs (grey) are not plotted\nbars: "
                  f"{ci_level:.0%} intervals; intervals beyond the axis are clipped, "
                  f"▲/▼ marking the cut end", fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    return fig


def sensor_distribution_figure(rows: List[Dict[str, object]], metric: str, min_samples: int):
    """A per-sensor figure over the held-out sensors (every split but
    train), one row of dots per predictor, a dot per sensor (kept apart by
    ``swarm_offsets``) and a bar at the median; the axis is set from the
    values (``axis_limits``: r within [-1, 1]).

    Args:
        rows: ``per_sensor.csv``'s rows.
        metric: ``r`` or ``ubrmse``.
        min_samples: sensors with fewer pairs are left out.
    """
    _, plt = _matplotlib()
    used = [r for r in rows if r["n"] >= min_samples and r[metric] is not None
            and r["split"] != "train"]
    predictors = predictor_order({r["predictor"] for r in used})
    fig, ax = plt.subplots(figsize=(7.5, 1.5 + 0.65 * max(1, len(predictors))),
                           layout="constrained")
    limits = axis_limits([r[metric] for r in used], **_RANGE[metric])
    handles = []
    for row, p in enumerate(predictors):
        values = np.array([r[metric] for r in used if r["predictor"] == p], dtype=np.float64)
        median = float(np.median(values))
        offsets = swarm_offsets(values, width=0.018 * (limits[1] - limits[0]))
        handles.append(ax.scatter(values, row + offsets, s=36, color=f"C{row}", alpha=0.85,
                                  edgecolors="white", linewidths=0.5, clip_on=False, zorder=3,
                                  label=f"{DISPLAY.get(p, p)}: {len(values)} sensors, "
                                        f"median {median:.3f}"))
        (bar,) = ax.plot([median, median], [row - 0.42, row + 0.42], color="k", lw=1.6,
                         zorder=4, label="median")  # over the dots, longer than their spread
    if predictors:
        handles.append(bar)
    ax.set_yticks(range(len(predictors)), labels=[DISPLAY.get(p, p) for p in predictors])
    ax.set_ylim(max(1, len(predictors)) - 0.5, -0.5)
    ax.set_xlim(*limits)
    ax.grid(axis="x", lw=0.4, alpha=0.5)
    word = "r" if metric == "r" else "ubRMSE"
    ax.set(xlabel="per-sensor " + ("correlation r" if metric == "r" else "ubRMSE (m³/m³)")
           + " (a dot per sensor)",
           title=f"Per-sensor {word}, {split_title({r['split'] for r in used})} sensors "
                 f"with at least {min_samples} pairs")
    if used:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    else:
        ax.text(0.5, 0.5, "no held-out sensor has enough pairs", transform=ax.transAxes,
                ha="center", va="center")
    return fig


def _date_formatter():
    """A tick formatter writing dates with their year (``date_tick_labels``)."""
    import matplotlib.dates as mdates
    from matplotlib.ticker import Formatter

    class YearDates(Formatter):
        def __call__(self, x, pos=None):
            return f"{mdates.num2date(x):%Y-%m-%d %H:%M}"

        def format_ticks(self, values):
            return date_tick_labels([mdates.num2date(v) for v in values])

    return YearDates()


def series_figure(series: Dict[str, List[Dict[str, object]]]):
    """The in-situ label and each predictor over time, one panel per sensor
    (most examples first), lines broken across gaps longer than
    ``MAX_SERIES_GAP_MS`` (``break_gaps``), dates written with their year
    (``date_tick_labels``).

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
        ax.set_ylabel("soil moisture (m³/m³)")
        ax.xaxis.set_major_locator(mdates.AutoDateLocator())
        ax.xaxis.set_major_formatter(_date_formatter())
    fig.legend(list(legend.values()), list(legend), loc="outside right upper", fontsize=8)
    fig.supxlabel(f"lines are not drawn across gaps longer than "
                  f"{MAX_SERIES_GAP_MS / 86400e3:g} days", fontsize=8)
    return fig
