"""The rules of the evaluation's plots, as plain functions (no matplotlib).

How categories are ordered (``category_order``: ages by age, seasons
DJF-MAM-JJA-SON, months 1-12, land cover by class code) and labelled
(``category_label``, ``tick_label``, ``slant_labels``), what a title says of the splits (``split_title``: only
those present) and of a breakdown (``breakdown_title``), which groups are
too small to plot (``MIN_GROUP_PAIRS``), the text on a scatter panel
(``panel_text``), integer ticks of a count colour bar (``count_ticks``),
where a time series is broken rather than joined (``break_gaps``) and how
its dates are written (``date_tick_labels``: each with its year), an axis
set from the values it shows (``axis_limits``), intervals clipped at it
(``clip_intervals``) and dots of a strip plot kept apart
(``swarm_offsets``). ``plots`` draws with them.
"""

import calendar
import datetime
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from transforms.dataset import schema
from transforms.evaluation.inputs import AGE_BINS, AGE_OVER, SEASONS

#: Groups of a breakdown with fewer pairs are not plotted: r is ±1 at n = 2,
#: and neither r nor ubRMSE has an interval below 3 pairs.
MIN_GROUP_PAIRS = 3

#: A time series is not joined across a gap longer than this (milliseconds).
MAX_SERIES_GAP_MS = 7 * 86400e3

#: What each breakdown is, in words.
BREAKDOWN_TITLES = {"network": "network", "land_cover": "land cover at the sensor",
                    "sentinel_1_age": "age of the Sentinel-1 input",
                    "sentinel_2_age": "age of the Sentinel-2 input",
                    "month": "month", "season": "season"}

_SEASON_ORDER = ("DJF", "MAM", "JJA", "SON")
_AGE_ORDER = tuple(name for _, name in AGE_BINS) + (AGE_OVER,)
_LAND_COVER_CODES = {name: code for code, name in schema.LAND_COVER_CLASSES.items()}


def _land_cover_code(group: str) -> Optional[int]:
    if group in _LAND_COVER_CODES:
        return _LAND_COVER_CODES[group]
    head, _, number = group.partition(" ")
    return int(number) if head == "class" and number.isdigit() else None


def _rank(breakdown: str, group: str) -> Optional[float]:
    """The group's place in its breakdown's natural order, or None (unknown)."""
    if breakdown in ("sentinel_1_age", "sentinel_2_age") and group in _AGE_ORDER:
        return _AGE_ORDER.index(group)
    if breakdown == "season" and group in _SEASON_ORDER:
        return _SEASON_ORDER.index(group)
    if breakdown == "month" and group.isdigit() and 1 <= int(group) <= 12:
        return int(group)
    if breakdown == "land_cover":
        return _land_cover_code(group)
    return None


def category_order(breakdown: str, groups: Sequence[str]) -> List[str]:
    """The groups of a breakdown in their natural order.

    Ages by age (``<= 1 day`` ... ``> 7 days``), seasons DJF, MAM, JJA, SON
    (``inputs.SEASONS``), months 1-12, land cover by CGLS class code;
    networks and any other breakdown alphabetically, ignoring case. Groups
    the order does not know come last, alphabetically.

    Args:
        breakdown: the breakdown's key (``inputs.BREAKDOWNS``).
        groups: its groups, in any order, repeats allowed.

    Returns:
        Each group once, in order.
    """
    def key(group):
        rank = _rank(breakdown, group)
        return (rank is None, rank if rank is not None else 0, group.lower(), group)

    return sorted(set(groups), key=key)


def category_label(breakdown: str, group: str) -> str:
    """How a group is written on an axis: a month by its name (``01`` ->
    ``Jan``); a season with its months (``DJF`` -> ``DJF (Dec-Feb)``);
    every other group as it is.

    Args:
        breakdown: the breakdown's key.
        group: the group, as in ``per_group.csv``.
    """
    if breakdown == "month" and group.isdigit() and 1 <= int(group) <= 12:
        return calendar.month_abbr[int(group)]
    if breakdown == "season" and group in _SEASON_ORDER:
        months = [m for m in (12, *range(1, 12)) if SEASONS[m] == group]
        return f"{group} ({calendar.month_abbr[months[0]]}-{calendar.month_abbr[months[-1]]})"
    return group


def breakdown_title(breakdown: str) -> str:
    """A breakdown's key in words (``land_cover`` -> ``land cover at the
    sensor``), for titles; an unknown key with its underscores as spaces.

    Args:
        breakdown: the breakdown's key.
    """
    return BREAKDOWN_TITLES.get(breakdown, breakdown.replace("_", " "))


def split_title(splits_present: Sequence[str]) -> str:
    """The splits a plot shows, named: only those present, in the order
    train, validation, test (``validation + test``; ``validation`` alone
    when there is no test split; ``all`` for ``--split_by none``).

    Args:
        splits_present: the splits of the plotted values, repeats allowed.

    Returns:
        The names joined by `` + ``; ``no split`` when there is none.
    """
    order = (*schema.SPLITS, "all")
    present = set(splits_present)
    names = [s for s in order if s in present] + sorted(present - set(order))
    return " + ".join(names) if names else "no split"


def _fmt(value: Optional[float], digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def panel_text(metrics: Dict[str, object]) -> str:
    """What a scatter panel states of its pairs: r, ubRMSE and n.

    Args:
        metrics: the pooled figures of one split and predictor (``n``,
            ``r``, ``ubrmse``; ``r`` may be None).

    Returns:
        Three lines, ``r = 0.982``, ``ubRMSE = 0.021 m³/m³``, ``n = 46``.
    """
    return (f"r = {_fmt(metrics.get('r'))}\n"
            f"ubRMSE = {_fmt(metrics.get('ubrmse'))} m³/m³\n"
            f"n = {metrics.get('n', 0)}")


def count_ticks(largest: float) -> List[int]:
    """Integer ticks 1, 2, 5, 10, 20, 50, ... up to ``largest``, and
    ``largest`` itself (rounded down) unless it lies within 40 % of the last
    of them, for a logarithmic colour bar of counts.

    Args:
        largest: the largest count shown.

    Returns:
        The ticks, increasing, at least ``[1]``.
    """
    top = max(int(largest), 1)
    ticks, decade = [], 1
    while decade <= top:
        ticks += [t for t in (decade, 2 * decade, 5 * decade) if t <= top]
        decade *= 10
    if top >= 1.4 * ticks[-1]:
        ticks.append(top)
    return ticks


def tick_label(breakdown: str, group: str, pairs: Sequence[int], rotated: bool) -> str:
    """A group's tick: its ``category_label`` and its pairs per split
    (``n=30`` or ``n=30/12``), on a second line, or after it when the
    labels are ``rotated``.

    Args:
        breakdown: the breakdown's key.
        group: the group.
        pairs: its labelled pairs in each split shown, in order.
        rotated: whether the labels are slanted (one line each).
    """
    n = "n=" + "/".join(str(k) for k in pairs)
    return f"{category_label(breakdown, group)}{' (' + n + ')' if rotated else chr(10) + n}"


def slant_labels(labels: Sequence[str]) -> bool:
    """Whether a breakdown's group labels are too long to stand side by side:
    one over 16 characters, or more than 60 in all at the longest's length.

    Args:
        labels: the groups' ``category_label``.
    """
    longest = max((len(label) for label in labels), default=0)
    return longest > 16 or len(labels) * longest > 60


def break_gaps(times: Sequence[float], values: Sequence[float],
               max_gap: float = MAX_SERIES_GAP_MS) -> Tuple[np.ndarray, np.ndarray]:
    """A series with a NaN between points further apart than ``max_gap``,
    so that a line plot does not join them.

    Args:
        times: sorted times (any unit, e.g. Unix milliseconds).
        values: the value at each time.
        max_gap: the longest gap still joined, in the unit of ``times``.

    Returns:
        ``(times, values)`` as float arrays, with a point at the middle of
        each longer gap whose value is NaN.

    Raises:
        ValueError: ``times`` and ``values`` differ in length.
    """
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.shape != v.shape:
        raise ValueError(f"{len(t)} times but {len(v)} values")
    gaps = np.flatnonzero(np.diff(t) > max_gap)
    middles = (t[gaps] + t[gaps + 1]) / 2
    return np.insert(t, gaps + 1, middles), np.insert(v, gaps + 1, np.nan)


def axis_limits(values: Sequence[float], lowest: Optional[float] = None,
                highest: Optional[float] = None, margin: float = 0.1,
                min_span: float = 0.05) -> Tuple[float, float]:
    """Axis limits from the values shown (not from their intervals): their
    range widened to at least ``min_span``, then by ``margin`` of it on each
    side, kept within ``lowest`` and ``highest`` (r within [-1, 1], an
    error at or above 0).

    Args:
        values: the values shown; NaN and None are ignored.
        lowest: the lowest limit allowed, or None.
        highest: the highest limit allowed, or None.
        margin: the room on each side, as a fraction of the span.
        min_span: the smallest span, for values all (nearly) equal.

    Returns:
        ``(low, high)``; ``(lowest, highest)`` (or ``(0, 1)`` where not
        given) when there is no value.
    """
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return (0.0 if lowest is None else float(lowest),
                1.0 if highest is None else float(highest))
    low, high = float(v.min()), float(v.max())
    widen = max(0.0, min_span - (high - low)) / 2
    low, high = low - widen, high + widen
    pad = margin * (high - low)
    low, high = low - pad, high + pad
    return (float(low if lowest is None else max(lowest, low)),
            float(high if highest is None else min(highest, high)))


def clip_intervals(lower: Sequence[Optional[float]], upper: Sequence[Optional[float]],
                   limits: Tuple[float, float]) -> Tuple[np.ndarray, ...]:
    """Intervals cut at the axis, and which ends were cut (to be marked).

    Args:
        lower: each interval's lower end (None or NaN: none).
        upper: each interval's upper end (None or NaN: none).
        limits: the axis's ``(low, high)``.

    Returns:
        ``(lower, upper, cut_lower, cut_upper)``: the ends within
        ``limits`` (NaN where there was none), and boolean arrays, True
        where an end lay beyond the axis.
    """
    lo = np.array([np.nan if x is None else x for x in lower], dtype=np.float64)
    hi = np.array([np.nan if x is None else x for x in upper], dtype=np.float64)
    cut_lo, cut_hi = lo < limits[0], hi > limits[1]
    return (np.where(cut_lo, limits[0], lo), np.where(cut_hi, limits[1], hi), cut_lo, cut_hi)


def swarm_offsets(values: Sequence[float], width: float, spread: float = 0.35,
                  step: float = 0.12) -> np.ndarray:
    """Offsets across a strip plot's row that keep its dots apart: a dot
    closer than ``width`` to one already placed moves to the next free
    level (0, +1, -1, +2, ...), the levels ``step`` apart, closer when
    needed to stay within ``spread``.

    Args:
        values: the dots' values along the row.
        width: the distance along the row below which two dots overlap.
        spread: the largest offset, either side.
        step: the distance between levels when they fit.

    Returns:
        Each dot's offset, in the order of ``values``.
    """
    v = np.asarray(values, dtype=np.float64)
    levels = np.zeros(len(v), dtype=np.int64)
    placed: List[int] = []
    for i in np.argsort(v, kind="stable"):
        taken = {levels[j] for j in placed if abs(v[j] - v[i]) < width}
        k = 0
        while k in taken:
            k = -k if k > 0 else 1 - k
        levels[i] = k
        placed.append(i)
    top = max(1, int(np.abs(levels).max(initial=0)))
    return levels * min(step, spread / top)


def date_tick_labels(dates: Sequence[datetime.datetime]) -> List[str]:
    """Tick labels of a time axis that read with their year: years alone;
    otherwise months as ``Mar``, days as ``5 Mar``, times as ``06:00``, with
    a second line naming the year (for times: the date) on the first tick
    and on each where it changes (``Mar`` over ``2016``, ``Jan`` over
    ``2017``; ``06:00`` over ``5 Mar 2016``).

    Args:
        dates: the ticks, increasing.

    Returns:
        One label per tick.
    """
    midnight = all((d.hour, d.minute, d.second, d.microsecond) == (0, 0, 0, 0) for d in dates)
    if midnight and all((d.month, d.day) == (1, 1) for d in dates):
        return [str(d.year) for d in dates]
    months_only = all(d.day == 1 for d in dates)
    labels, last = [], None
    for d in dates:
        month = calendar.month_abbr[d.month]
        if not midnight:
            short, context = f"{d:%H:%M}", f"{d.day} {month} {d.year}"
        else:
            short, context = month if months_only else f"{d.day} {month}", str(d.year)
        labels.append(short if context == last else f"{short}\n{context}")
        last = context
    return labels
