"""evaluate's plots: categories in natural order, titles naming only the
splits present, n on every panel, r/ubRMSE/n and the 1:1 line on each
scatter panel, integer count axes, small groups left out, time series
broken across long gaps and dated with their year, axes set from the values
shown (r within [-1, 1]) with intervals clipped at them and marked, per-sensor
values as dots kept apart. The rules are plain functions (``plot_rules``),
tested directly; the figures (``plots``) are checked for using them."""

import datetime

import numpy as np
import pytest

from transforms.evaluation import plot_rules, plots
from transforms.evaluation.metrics import HIST_BINS

DAY = 86400e3


@pytest.mark.parametrize("breakdown, shuffled, natural", [
    ("sentinel_1_age", ["> 7 days", "1-3 days", "<= 1 day", "3-7 days"],
     ["<= 1 day", "1-3 days", "3-7 days", "> 7 days"]),
    ("sentinel_2_age", ["3-7 days", "<= 1 day"], ["<= 1 day", "3-7 days"]),
    ("season", ["SON", "DJF", "JJA", "MAM", "DJF"], ["DJF", "MAM", "JJA", "SON"]),
    ("month", ["10", "2", "12", "1"], ["1", "2", "10", "12"]),
    ("month", ["12", "03", "01"], ["01", "03", "12"]),
    ("land_cover", ["Cropland", "class 75", "Shrubs", "Closed forest, mixed",
                    "Bare / sparse vegetation"],
     ["Shrubs", "Cropland", "Bare / sparse vegetation", "class 75", "Closed forest, mixed"]),
    ("network", ["SCAN", "amma", "REMEDHUS"], ["amma", "REMEDHUS", "SCAN"]),
    ("season", ["unknown", "SON", "DJF"], ["DJF", "SON", "unknown"]),
])
def test_categories_come_in_their_natural_order(breakdown, shuffled, natural):
    assert plot_rules.category_order(breakdown, shuffled) == natural


def test_category_labels_and_ticks_say_what_and_how_many():
    assert plot_rules.category_label("month", "01") == "Jan"
    assert plot_rules.category_label("month", "12") == "Dec"
    assert plot_rules.category_label("season", "DJF") == "DJF (Dec-Feb)"
    assert plot_rules.category_label("season", "SON") == "SON (Sep-Nov)"
    assert plot_rules.category_label("land_cover", "Shrubs") == "Shrubs"
    assert plot_rules.tick_label("month", "01", [20, 21], rotated=False) == "Jan\nn=20/21"
    assert plot_rules.tick_label("land_cover", "Shrubs", [5], rotated=True) == "Shrubs (n=5)"
    assert plot_rules.slant_labels(["Closed forest, mixed", "Shrubs"])
    assert plot_rules.slant_labels([f"NETWORK{k}" for k in range(8)])  # 8 x 8 characters
    assert not plot_rules.slant_labels(["Jan", "Feb", "Mar", "Apr"] * 3)
    assert not plot_rules.slant_labels(["DJF (Dec-Feb)", "MAM (Mar-May)", "JJA (Jun-Aug)"])


def test_breakdown_titles_are_words_not_keys():
    assert plot_rules.breakdown_title("land_cover") == "land cover at the sensor"
    assert plot_rules.breakdown_title("sentinel_1_age") == "age of the Sentinel-1 input"
    assert plot_rules.breakdown_title("soil_texture") == "soil texture"


@pytest.mark.parametrize("splits, title", [
    (["validation"], "validation"),
    (["test", "validation", "test"], "validation + test"),
    (["test", "train"], "train + test"),
    (["all"], "all"),
    ([], "no split"),
])
def test_titles_name_only_the_splits_present(splits, title):
    assert plot_rules.split_title(splits) == title


def test_series_are_broken_across_gaps_longer_than_the_limit():
    t = np.array([0, 1, 2, 9, 10, 30]) * DAY  # gaps: 7 days (joined), 20 days (broken)
    times, values = plot_rules.break_gaps(t, [1, 2, 3, 4, 5, 6], max_gap=7 * DAY)
    assert np.isnan(values).tolist() == [False] * 5 + [True, False]
    assert times[5] == 20 * DAY and np.all(np.diff(times) > 0)
    assert values[~np.isnan(values)].tolist() == [1, 2, 3, 4, 5, 6]
    same, _ = plot_rules.break_gaps(t[:3], [1, 2, 3])
    assert same.tolist() == t[:3].tolist()
    with pytest.raises(ValueError):
        plot_rules.break_gaps(t, [1, 2])


def test_panel_text_and_count_ticks():
    text = plot_rules.panel_text({"n": 46, "r": 0.98213, "ubrmse": 0.0214})
    assert text.splitlines() == ["r = 0.982", "ubRMSE = 0.021 m³/m³", "n = 46"]
    assert plot_rules.panel_text({"n": 2, "r": None, "ubrmse": 0.1}).startswith("r = –")
    assert plot_rules.count_ticks(1) == [1]
    assert plot_rules.count_ticks(3) == [1, 2, 3]
    assert plot_rules.count_ticks(13) == [1, 2, 5, 10]
    assert plot_rules.count_ticks(17.0) == [1, 2, 5, 10, 17]
    assert plot_rules.count_ticks(1000) == [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]


def test_axis_limits_come_from_the_values_with_a_margin_within_the_range():
    low, high = plot_rules.axis_limits([0.55, 0.99, 0.7], lowest=-1, highest=1)
    assert 0.5 < low < 0.55 and high == 1.0  # not -1..1; r never beyond 1
    assert plot_rules.axis_limits([0.1, 0.3], lowest=0) == pytest.approx((0.08, 0.32))
    assert plot_rules.axis_limits([0.01, 0.2], lowest=0)[0] == 0.0  # an error stays >= 0
    assert plot_rules.axis_limits([-0.99, 0.99], lowest=-1, highest=1) == (-1.0, 1.0)
    low, high = plot_rules.axis_limits([0.5, 0.5, None, float("nan")], min_span=0.1)
    assert (low, high) == pytest.approx((0.44, 0.56))  # one value: widened, then margin
    assert plot_rules.axis_limits([], lowest=-1, highest=1) == (-1.0, 1.0)


def test_intervals_beyond_the_axis_are_clipped_and_their_cut_ends_known():
    lo, hi, cut_lo, cut_hi = plot_rules.clip_intervals(
        [0.1, -0.9, None, 0.4], [1.3, 0.2, 0.25, 0.5], (0.0, 0.3))
    assert lo[[0, 1, 3]].tolist() == [0.1, 0.0, 0.4] and np.isnan(lo[2])
    assert hi.tolist() == [0.3, 0.2, 0.25, 0.3]
    assert cut_lo.tolist() == [False, True, False, False]
    assert cut_hi.tolist() == [True, False, False, True]


def test_strip_plot_dots_closer_than_their_width_are_moved_apart():
    values = [0.5, 0.9, 0.5, 0.505, 0.7, 0.52]
    offsets = plot_rules.swarm_offsets(values, width=0.01)
    assert offsets[[1, 4, 5]].tolist() == [0, 0, 0]  # alone: on the row's line
    assert len({offsets[0], offsets[2], offsets[3]}) == 3  # three overlapping: three levels
    assert np.abs(offsets).max() == pytest.approx(0.12)
    many = plot_rules.swarm_offsets([0.3] * 20, width=0.01, spread=0.35)
    assert len(set(many.round(9))) == 20 and np.abs(many).max() <= 0.35


def test_dates_are_written_with_their_year():
    d = datetime.datetime
    assert plot_rules.date_tick_labels([d(2016, m, 1) for m in (3, 5, 7, 9, 11)]
                                       + [d(2017, 1, 1)]) == [
        "Mar\n2016", "May", "Jul", "Sep", "Nov", "Jan\n2017"]
    assert plot_rules.date_tick_labels([d(2016, 12, 20), d(2016, 12, 27), d(2017, 1, 3)]) == [
        "20 Dec\n2016", "27 Dec", "3 Jan\n2017"]
    assert plot_rules.date_tick_labels([d(2016, 12, 31, 12), d(2016, 12, 31, 18),
                                        d(2017, 1, 1)]) == [
        "12:00\n31 Dec 2016", "18:00", "00:00\n1 Jan 2017"]
    assert plot_rules.date_tick_labels([d(2016, 1, 1), d(2018, 1, 1)]) == ["2016", "2018"]


def _hist(rng, n):
    counts = np.zeros((HIST_BINS, HIST_BINS), dtype=np.int64)
    for _ in range(n):
        y = rng.integers(5, 40)
        counts[y, min(HIST_BINS - 1, y + rng.integers(-2, 3))] += 1
    return counts


def test_each_scatter_panel_shows_r_ubrmse_n_and_the_one_to_one_line():
    rng = np.random.default_rng(0)
    hists = {"validation": {"model": _hist(rng, 46)}, "test": {"model": _hist(rng, 30)}}
    pooled = {"validation": {"model": {"n": 46, "r": 0.9821, "ubrmse": 0.0213}},
              "test": {"model": {"n": 30, "r": 0.75, "ubrmse": 0.051}}}
    fig = plots.density_figure(hists, "model", ["train", "validation", "test"], pooled)
    panels = [ax for ax in fig.axes if ax.get_xlabel() == "Model (m³/m³)"]
    assert [ax.get_title() for ax in panels] == ["validation split", "test split"]
    for ax, split in zip(panels, ("validation", "test")):
        m = pooled[split]["model"]
        text = "\n".join(t.get_text() for t in ax.texts)
        assert f"r = {m['r']:.3f}" in text and f"ubRMSE = {m['ubrmse']:.3f}" in text
        assert f"n = {m['n']}" in text
        assert any(list(line.get_xdata()) == [0, 1] and list(line.get_ydata()) == [0, 1]
                   for line in ax.get_lines())
    assert "(validation + test)" in fig._suptitle.get_text()
    bars = [ax for ax in fig.axes if ax not in panels]
    assert len(bars) == 2
    for bar in bars:  # counts as plain integers: 1, 2, 5, 10, not 10^0 or 2x10^0
        labels = [t.get_text() for t in bar.get_yticklabels()]
        assert labels and all(label.isdigit() for label in labels), labels
    plots.png(fig)


def _group(split, group, predictor, n, r=0.5, ubrmse=0.05):
    return {"split": split, "breakdown": "season", "group": group, "predictor": predictor, "n": n,
            "r": r, "ubrmse": ubrmse, "r_ci_lower": r - 0.1, "r_ci_upper": r + 0.1,
            "ubrmse_ci_lower": ubrmse - 0.01, "ubrmse_ci_upper": ubrmse + 0.01}


def test_breakdown_is_ordered_titled_and_leaves_out_groups_under_three_pairs():
    rows = [_group("validation", g, p, n, r=(1.0 if n < 3 else 0.5))
            for g, n in (("SON", 10), ("DJF", 12), ("MAM", 2), ("JJA", 9))
            for p in ("smap", "model")]
    fig = plots.breakdown_figure(rows, "season", ["validation", "test"])
    ubrmse_ax, r_ax = fig.axes[:2]
    assert [t.get_text() for t in r_ax.get_xticklabels()] == [
        "DJF (Dec-Feb)\nn=12", "MAM (Mar-May)\nn=2", "JJA (Jun-Aug)\nn=9", "SON (Sep-Nov)\nn=10"]
    plotted_r = [y for line in r_ax.get_lines() for y in line.get_ydata()
                 if line.get_marker() not in (None, "None", "", "_")]
    assert plotted_r and 1.0 not in plotted_r  # the n = 2 group is not drawn at r = 1
    title = fig._suptitle.get_text()
    assert title == "Skill by season (validation)" and "test" not in title
    assert "fewer than 3 pairs" in fig._supxlabel.get_text()
    plots.png(fig)
    assert "clipped" in fig._supxlabel.get_text()
    cover = [{**r, "breakdown": "land_cover", "group": "Shrubs"} for r in rows[:2]]
    fig = plots.breakdown_figure(cover, "land_cover", ["validation", "test"])
    assert fig._suptitle.get_text() == "Skill by land cover at the sensor (validation)"
    plots.png(fig)


def test_breakdown_axes_follow_the_points_and_mark_clipped_intervals():
    rows = [{**_group("validation", g, "smap", 4, r=r, ubrmse=u), "r_ci_lower": -1.0,
             "r_ci_upper": 1.0, "ubrmse_ci_upper": 1.3}
            for g, r, u in (("DJF", 0.6, 0.1), ("JJA", 0.99, 0.2))]
    fig = plots.breakdown_figure(rows, "season", ["validation"])
    ubrmse_ax, r_ax = fig.axes[:2]
    assert ubrmse_ax.get_ylim() == pytest.approx(plot_rules.axis_limits([0.1, 0.2], lowest=0))
    assert 0.5 < r_ax.get_ylim()[0] < 0.6 and r_ax.get_ylim()[1] == 1.0
    for ax in (ubrmse_ax, r_ax):  # every drawn bar within the axis
        for collection in ax.collections:
            for segment in getattr(collection, "get_segments", lambda: [])():
                assert ax.get_ylim()[0] - 1e-9 <= np.min(segment[:, 1])
                assert np.max(segment[:, 1]) <= ax.get_ylim()[1] + 1e-9
    from matplotlib.collections import PathCollection

    carets = lambda ax: [c.get_offsets()[:, 1].tolist() for c in ax.collections  # noqa: E731
                         if isinstance(c, PathCollection)]
    top, bottom = ubrmse_ax.get_ylim()[1], r_ax.get_ylim()[0]
    assert carets(ubrmse_ax) == [[top, top]]  # upper ends (1.3) cut; lower (point - 0.01) not
    assert carets(r_ax) == [[bottom, bottom]]  # lower ends (-1) cut; upper ends at 1, the axis
    assert "intervals beyond the axis are clipped" in fig._supxlabel.get_text()
    plots.png(fig)


def test_per_sensor_values_are_dots_on_an_axis_set_from_them():
    rows = [{"split": "validation", "sensor_id": f"S{k}", "predictor": p, "n": 20,
             "r": r, "ubrmse": 0.04} for p, values in (("smap", (0.6, 0.8, 0.8)),
                                                       ("model", (0.97, 0.99, 0.98)))
            for k, r in enumerate(values)]
    fig = plots.sensor_distribution_figure(rows, "r", min_samples=10)
    (ax,) = fig.axes
    low, high = ax.get_xlim()
    assert 0.5 < low < 0.6 and high == 1.0
    assert [t.get_text() for t in ax.get_yticklabels()] == ["SMAP", "Model"]
    dots = [c.get_offsets() for c in ax.collections]
    assert [sorted(d[:, 0].tolist()) for d in dots] == [[0.6, 0.8, 0.8], [0.97, 0.98, 0.99]]
    assert len({tuple(p) for p in dots[0]}) == 3  # the two 0.8 sensors do not hide each other
    medians = [line.get_xdata()[0] for line in ax.get_lines()]
    assert medians == [0.8, 0.98]
    plots.png(fig)


def test_per_sensor_distribution_counts_are_integers_and_titled_by_present_splits():
    rows = [{"split": "validation", "sensor_id": f"S{k}", "predictor": p, "n": 20,
             "r": 0.5 + 0.1 * k, "ubrmse": 0.04} for k in range(3) for p in ("smap", "model")]
    rows.append({"split": "train", "sensor_id": "T", "predictor": "model", "n": 20, "r": 0.9,
                 "ubrmse": 0.01})
    fig = plots.sensor_distribution_figure(rows, "r", min_samples=10)
    (ax,) = fig.axes
    assert all(float(t) == int(t) for t in ax.get_yticks())
    assert "validation sensors" in ax.get_title() and "test" not in ax.get_title()
    assert "3 sensors" in ax.get_legend().get_texts()[0].get_text()
    plots.png(fig)


def test_time_series_lines_break_across_a_gap_of_more_than_a_week():
    points = [{"timestamp": 1.5e12 + d * DAY, "label": 0.2 + 0.01 * d, "split": "validation",
               "predictors": {"model": 0.21 + 0.01 * d}} for d in (0, 1, 3, 20, 21)]
    fig = plots.series_figure({"NET__S__X": points})
    ax = fig.axes[0]
    for line in ax.get_lines():
        assert int(np.isnan(line.get_ydata()).sum()) == 1, line.get_label()
    assert ax.get_title() == "NET__S__X: validation split, n = 5 examples"
    assert ax.get_ylabel() == "soil moisture (m³/m³)"
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0].endswith("\n2017") and all(label for label in labels), labels
    plots.png(fig)
