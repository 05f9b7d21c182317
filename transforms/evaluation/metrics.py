"""Metrics from streaming sufficient statistics, as Beam combiners.

``PairStats`` holds count, means, and centred second moments, merged with
Chan et al.'s parallel formulas, so a ``CombineFn`` computes the metrics over
any number of rows without collecting them, and without the cancellation of
raw sums:

* ``bias``   = mean(prediction - label)
* ``rmse``   = sqrt(mean((prediction - label)^2))
* ``ubrmse`` = sqrt(rmse^2 - bias^2)  (RMSE with the mean bias removed)
* ``r``      = Pearson correlation; ``None`` when either side is constant or
  n < 2 (never NaN in the outputs).

``PairStats.metrics(ci_level)`` adds analytical confidence intervals from the
same statistics, with the formulas of pytesmo's ``with_analytical_ci``
(``pytesmo.metrics.pairwise.*_ci``), for x = prediction, y = label:

* bias: ``bias -+ t(1 - a/2, n-1) * std(p - y, ddof=1) / sqrt(n)`` (Student's t);
* ubRMSE: ``sqrt(n ubrmse^2 / chi2(1 - a/2, n-1))`` to
  ``sqrt(n ubrmse^2 / chi2(a/2, n-1))`` (chi-squared, n - 1 degrees of freedom);
* r: ``tanh(atanh(r) -+ z(1 - a/2) / sqrt(n - 3))`` (Fisher's z), which is
  [-1, 1] at n = 3 as pytesmo's is;

with ``a = 1 - ci_level``. All are ``None`` for n < 3, and r's also when r is.
"""

import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
from scipy import stats as distributions


@dataclasses.dataclass
class PairStats:
    """Running statistics of (prediction p, label y) pairs (Welford/Chan).

    Attributes:
        n: pairs added.
        mean_p, mean_y: the means of p and y.
        m2_p, m2_y: the sums of squared deviations of p and of y.
        c_py: the sum of co-deviations of p and y.
    """

    n: int = 0
    mean_p: float = 0.0
    mean_y: float = 0.0
    m2_p: float = 0.0  # sum of squared deviations of p
    m2_y: float = 0.0
    c_py: float = 0.0  # sum of co-deviations

    def add(self, p: float, y: float) -> "PairStats":
        self.n += 1
        dp = p - self.mean_p
        dy = y - self.mean_y
        self.mean_p += dp / self.n
        self.mean_y += dy / self.n
        self.m2_p += dp * (p - self.mean_p)
        self.m2_y += dy * (y - self.mean_y)
        self.c_py += dp * (y - self.mean_y)
        return self

    def merge(self, other: "PairStats") -> "PairStats":
        if other.n == 0:
            return self
        if self.n == 0:
            return dataclasses.replace(other)
        n = self.n + other.n
        dp = other.mean_p - self.mean_p
        dy = other.mean_y - self.mean_y
        f = self.n * other.n / n
        return PairStats(n, self.mean_p + dp * other.n / n, self.mean_y + dy * other.n / n,
                         self.m2_p + other.m2_p + dp * dp * f,
                         self.m2_y + other.m2_y + dy * dy * f,
                         self.c_py + other.c_py + dp * dy * f)

    def metrics(self, ci_level: Optional[float] = None) -> Dict[str, Optional[float]]:
        """n, bias, rmse, ubrmse, r; with ``ci_level`` (e.g. 0.95) also the
        ``CI_KEYS`` (see the module docstring)."""
        out = self._point_metrics()
        if ci_level is not None:
            out.update(analytical_cis(self, out, ci_level))
        return out

    def _point_metrics(self) -> Dict[str, Optional[float]]:
        if self.n == 0:
            return {"n": 0, "bias": None, "rmse": None, "ubrmse": None, "r": None}
        bias = self.mean_p - self.mean_y
        # mean((p - y)^2) = var(p - y) + bias^2, var(p - y) = (m2_p + m2_y - 2 c_py) / n
        var_diff = max((self.m2_p + self.m2_y - 2 * self.c_py) / self.n, 0.0)
        denom = math.sqrt(self.m2_p * self.m2_y)
        r = None
        if self.n >= 2 and denom > 1e-12 * max(1.0, self.m2_p + self.m2_y):
            r = max(-1.0, min(1.0, self.c_py / denom))
        return {"n": self.n, "bias": bias, "rmse": math.sqrt(var_diff + bias * bias),
                "ubrmse": math.sqrt(var_diff), "r": r}


CI_METRICS = ("bias", "ubrmse", "r")
CI_KEYS = tuple(f"{m}_ci_{end}" for m in CI_METRICS for end in ("lower", "upper"))


def analytical_cis(stats: PairStats, point: Dict[str, Optional[float]],
                   ci_level: float) -> Dict[str, Optional[float]]:
    """The ``CI_KEYS`` of ``stats`` (``point``: its ``metrics()``) at ``ci_level``."""
    if not 0 < ci_level < 1:
        raise ValueError(f"ci_level must lie between 0 and 1, not {ci_level}")
    out: Dict[str, Optional[float]] = dict.fromkeys(CI_KEYS)
    n = stats.n
    if n < 3:
        return out
    alpha = 1 - ci_level
    var_diff = max(stats.m2_p + stats.m2_y - 2 * stats.c_py, 0.0) / (n - 1)
    half = math.sqrt(var_diff / n) * float(distributions.t.ppf(1 - alpha / 2, n - 1))
    out["bias_ci_lower"], out["bias_ci_upper"] = point["bias"] - half, point["bias"] + half
    ubmsd = point["ubrmse"] ** 2
    out["ubrmse_ci_lower"] = math.sqrt(n * ubmsd / float(distributions.chi2.ppf(1 - alpha / 2, n - 1)))
    out["ubrmse_ci_upper"] = math.sqrt(n * ubmsd / float(distributions.chi2.ppf(alpha / 2, n - 1)))
    r = point["r"]
    if r is not None:
        if n == 3:  # z / sqrt(0): the interval is all of [-1, 1]
            out["r_ci_lower"], out["r_ci_upper"] = (-1.0, 1.0) if abs(r) < 1 else (None, None)
        elif abs(r) >= 1:
            out["r_ci_lower"] = out["r_ci_upper"] = r
        else:
            z = float(distributions.norm.ppf(1 - alpha / 2)) / math.sqrt(n - 3)
            out["r_ci_lower"], out["r_ci_upper"] = math.tanh(math.atanh(r) - z), math.tanh(math.atanh(r) + z)
    return out


class PairStatsFn(beam.CombineFn):
    """(prediction, label) pairs -> ``PairStats``."""

    def create_accumulator(self):
        return PairStats()

    def add_input(self, acc, pair):
        return acc.add(float(pair[0]), float(pair[1]))

    def merge_accumulators(self, accs):
        out = PairStats()
        for a in accs:
            out = out.merge(a)
        return out

    def extract_output(self, acc):
        return acc


HIST_BINS = 50


class Hist2dFn(beam.CombineFn):
    """(prediction, label) pairs -> a ``HIST_BINS`` x ``HIST_BINS`` count grid over [0, 1]^2
    (for the density scatter plot, streaming)."""

    def create_accumulator(self):
        return np.zeros((HIST_BINS, HIST_BINS), dtype=np.int64)

    def add_input(self, acc, pair):
        i = min(max(int(pair[1] * HIST_BINS), 0), HIST_BINS - 1)  # label: rows
        j = min(max(int(pair[0] * HIST_BINS), 0), HIST_BINS - 1)  # prediction: columns
        acc[i, j] += 1
        return acc

    def merge_accumulators(self, accs):
        return sum(accs, np.zeros((HIST_BINS, HIST_BINS), dtype=np.int64))

    def extract_output(self, acc):
        return acc


def bootstrap_interval(values: Sequence[float], statistic, samples: int, ci_level: float,
                       seed: int) -> Tuple[Optional[float], Optional[float]]:
    """Percentile bootstrap interval of ``statistic`` (``np.mean``, ``np.median``)
    over ``values``, resampled with replacement ``samples`` times from
    ``np.random.default_rng(seed)``; ``(None, None)`` for fewer than 2 values
    or no samples."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2 or samples < 1:
        return None, None
    rng = np.random.default_rng(seed)
    drawn = statistic(x[rng.integers(0, len(x), (samples, len(x)))], axis=1)
    tail = (1 - ci_level) / 2
    return float(np.quantile(drawn, tail)), float(np.quantile(drawn, 1 - tail))


#: per-sensor figures averaged over sensors; the first four get bootstrap intervals
SENSOR_METRICS = ("r", "ubrmse", "r_anom", "ubrmse_anom", "rmse", "bias")
BOOTSTRAPPED = SENSOR_METRICS[:4]


def summarise_sensors(per_sensor: List[Dict[str, object]], min_samples: int,
                      ci_level: float = 0.95, bootstrap_samples: int = 0,
                      seed: int = 0) -> Dict[str, object]:
    """Mean and median of per-sensor figures over sensors with enough pairs;
    with ``bootstrap_samples`` a bootstrap interval of each mean and median
    of ``BOOTSTRAPPED`` (resampling sensors, in sensor order, so the same
    rows give the same intervals whatever order they come in)."""
    used = sorted((m for m in per_sensor if m["n"] >= min_samples),
                  key=lambda m: str(m.get("sensor_id", "")))
    out: Dict[str, object] = {"sensors": len(per_sensor), "sensors_used": len(used),
                              "sensors_excluded_min_samples": len(per_sensor) - len(used)}
    for metric in SENSOR_METRICS:
        # a series too short to have anomalies (no neighbour within the window:
        # every anomaly 0, r undefined) is left out of both anomaly averages
        have = [m for m in used if m.get("r_anom") is not None] if metric == "ubrmse_anom" else used
        values = [m[metric] for m in have if m.get(metric) is not None]
        out[f"{metric}_mean"] = float(np.mean(values)) if values else None
        out[f"{metric}_median"] = float(np.median(values)) if values else None
        out[f"{metric}_sensors"] = len(values)
        if metric in BOOTSTRAPPED and bootstrap_samples:
            for name, statistic in (("mean", np.mean), ("median", np.median)):
                lower, upper = bootstrap_interval(values, statistic, bootstrap_samples,
                                                  ci_level, seed)
                out[f"{metric}_{name}_ci_lower"], out[f"{metric}_{name}_ci_upper"] = lower, upper
    out["sensors_without_anomaly"] = len(used) - out["r_anom_sensors"]
    return out


class MergeStatsFn(PairStatsFn):
    """``PairStats`` -> their merge (exact: the same as combining the pairs)."""

    def add_input(self, acc, stats):
        return acc.merge(stats)
