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
"""

import dataclasses
import math
from typing import Dict, List, Optional

import apache_beam as beam
import numpy as np


@dataclasses.dataclass
class PairStats:
    """Running statistics of (prediction p, label y) pairs."""

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

    def metrics(self) -> Dict[str, Optional[float]]:
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


def summarise_sensors(per_sensor: List[Dict[str, object]], min_samples: int) -> Dict[str, object]:
    """Mean and median of per-sensor r and ubRMSE, over sensors with enough pairs."""
    used = [m for m in per_sensor if m["n"] >= min_samples]
    out: Dict[str, object] = {"sensors": len(per_sensor), "sensors_used": len(used),
                              "sensors_excluded_min_samples": len(per_sensor) - len(used)}
    for metric in ("r", "ubrmse", "rmse", "bias"):
        values = [m[metric] for m in used if m[metric] is not None]
        out[f"{metric}_mean"] = float(np.mean(values)) if values else None
        out[f"{metric}_median"] = float(np.median(values)) if values else None
        out[f"{metric}_sensors"] = len(values)
    return out


class MergeStatsFn(PairStatsFn):
    """``PairStats`` -> their merge (exact: the same as combining the pairs)."""

    def add_input(self, acc, stats):
        return acc.merge(stats)
