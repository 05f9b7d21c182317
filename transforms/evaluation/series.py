"""Skill of each sensor's series: anomalies and the paired comparison.

These need a sensor's points in time order, so ``Evaluate`` groups the
points of one ``(split, sensor)`` (a few hundred examples on the real data,
never more than one sensor's) and ``sensor_skill`` computes, per predictor:

* **anomaly skill**: r and ubRMSE between the anomalies of the prediction and
  of the in-situ label, each anomaly taken from a centred moving average of
  its own series (pytesmo's ``calc_anomaly(series, window_size=35)``, whose
  ``moving_average`` keeps the points within ``window / 2`` days either side,
  both ends included, with times as Julian dates to the whole second, as
  ``julian_dates`` computes them);
* **paired statistics**: for the model and each baseline, r and ubRMSE on
  exactly the points where both have a value, so that their difference says
  which is better on the same data.
"""

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from transforms.evaluation.metrics import PairStats

__all__ = ["ANOMALY_WINDOW_DAYS", "julian_dates", "moving_average", "anomalies", "sensor_skill"]

ANOMALY_WINDOW_DAYS = 35.0
MODEL = "model"

Point = Tuple[float, float, Dict[str, float]]  # (timestamp ms, label, predictor -> value)


def julian_dates(timestamps_ms: Sequence[float]) -> np.ndarray:
    """Julian dates of Unix-millisecond times, cut to the whole second, by the
    Numerical Recipes formula pytesmo's ``moving_average`` applies to a
    ``DatetimeIndex`` (year, month, day, hour, minute, second)."""
    ms = np.floor(np.asarray(timestamps_ms, dtype=np.float64)).astype(np.int64)
    seconds = ms // 1000
    days = (seconds // 86400).astype("datetime64[D]")
    in_day = seconds % 86400
    year = days.astype("datetime64[Y]").astype(np.int64) + 1970
    month = (days.astype("datetime64[M]").astype(np.int64) % 12) + 1
    day = (days - days.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    hour, minute, second = in_day // 3600, (in_day % 3600) // 60, in_day % 60
    jan_feb = month <= 2
    jy = year - jan_feb
    jm = month + 1 + jan_feb * 12
    jd = np.int32(np.floor(365.25 * jy) + np.floor(30.6001 * jm) + (day + 1720995.0))
    ja = np.int32(0.01 * jy)
    jd += 2 - ja + np.int32(0.25 * ja)
    return jd + hour / 24.0 - 0.5 + minute / 1440.0 + second / 86400.0


def moving_average(values: Sequence[float], jd: np.ndarray, window_days: float) -> np.ndarray:
    """The mean of the values whose date lies within ``window_days / 2`` of
    each point's (both ends included); ``jd`` sorted ascending.

    The window's ends are found by a search on ``jd +- limit`` and then held
    to pytesmo's own test, ``|jd_j - jd_i| <= limit`` on the difference, at
    the one candidate either side (the sum and the difference can round
    differently in the last bit)."""
    x = np.asarray(values, dtype=np.float64)
    limit = float(np.float32(window_days)) / 2.0  # pytesmo takes the window as a C float
    n, at = len(x), np.arange(len(x))
    lo = np.searchsorted(jd, jd - limit, side="left")
    hi = np.searchsorted(jd, jd + limit, side="right")
    lo -= (lo > 0) & (np.abs(jd[np.maximum(lo - 1, 0)] - jd) <= limit)
    lo += (lo < at) & (np.abs(jd[np.minimum(lo, n - 1)] - jd) > limit)
    hi += (hi < n) & (np.abs(jd[np.minimum(hi, n - 1)] - jd) <= limit)
    hi -= (hi > at + 1) & (np.abs(jd[np.maximum(hi - 1, 0)] - jd) > limit)
    total = np.concatenate([[0.0], np.cumsum(x)])
    return (total[hi] - total[lo]) / (hi - lo)


def anomalies(values: Sequence[float], jd: np.ndarray,
              window_days: float = ANOMALY_WINDOW_DAYS) -> np.ndarray:
    """``values`` minus their centred moving average (pytesmo's ``calc_anomaly``)."""
    return np.asarray(values, dtype=np.float64) - moving_average(values, jd, window_days)


def _stats(p: Iterable[float], y: Iterable[float]) -> PairStats:
    stats = PairStats()
    for a, b in zip(p, y):
        stats = stats.add(float(a), float(b))
    return stats


def _anomaly_skill(points: List[Point], predictor: str, window_days: float) -> Dict[str, object]:
    have = [(t, y, p[predictor]) for t, y, p in points if predictor in p]
    if len(have) < 2:
        return {"n_anom": len(have), "r_anom": None, "ubrmse_anom": None}
    t, y, p = (np.array(c, dtype=np.float64) for c in zip(*have))
    jd = julian_dates(t)
    m = _stats(anomalies(p, jd, window_days), anomalies(y, jd, window_days)).metrics()
    return {"n_anom": m["n"], "r_anom": m["r"], "ubrmse_anom": m["ubrmse"]}


def _paired(points: List[Point], baseline: str, reference: str) -> Dict[str, object]:
    both = [(p[reference], p[baseline], y) for _, y, p in points
            if reference in p and baseline in p]
    ref = _stats((a for a, _, _ in both), (y for _, _, y in both)).metrics()
    base = _stats((b for _, b, _ in both), (y for _, _, y in both)).metrics()
    return {"n": len(both), "r_reference": ref["r"], "r_baseline": base["r"],
            "ubrmse_reference": ref["ubrmse"], "ubrmse_baseline": base["ubrmse"]}


def sensor_skill(key: Tuple[str, str], points: Iterable[Point],
                 window_days: float = ANOMALY_WINDOW_DAYS,
                 reference: str = MODEL) -> Dict[str, object]:
    """One sensor's anomaly skill per predictor and paired statistics of
    ``reference`` against every other predictor (``key``: split, sensor_id)."""
    split, sensor_id = key
    ordered = sorted(points, key=lambda point: point[0])
    predictors = sorted({name for _, _, p in ordered for name in p})
    paired: Dict[str, Optional[Dict[str, object]]] = {}
    if reference in predictors:
        paired = {b: _paired(ordered, b, reference) for b in predictors if b != reference}
    return {"split": split, "sensor_id": sensor_id,
            "anomaly": {p: _anomaly_skill(ordered, p, window_days) for p in predictors},
            "paired": paired}
