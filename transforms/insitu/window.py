"""The released window rule: an example (or a map time) and one sensor's
readings within +- a tolerance of it.

The timestamp is truncated to whole milliseconds, then to whole seconds
(floor), and readings ``t`` with ``ts - tol <= t <= ts + tol`` match:
exactly one is a label, none is a lookup failure, several a value failure
(counted, never guessed). A timestamp outside years 1-9999 is malformed.
"""

from __future__ import annotations

import dataclasses
import math
from typing import List, Optional

import numpy as np

#: Unix milliseconds of 0001-01-01 and of the end of 9999-12-31: the times a
#: ``datetime`` (and an ISMN reading) can have.
MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS = -62135596800000, 253402300799999


@dataclasses.dataclass
class Readings:
    """One sensor's readings, sorted by time."""

    times: np.ndarray  # int64 Unix seconds
    values: np.ndarray  # float64
    flags: List[str]

    def __len__(self) -> int:
        return len(self.times)


def timestamp_seconds(timestamp_ms: float) -> int:
    """The example's float32 millisecond timestamp as whole Unix seconds.

    Raises ValueError, with the value, for one that is not finite or not in
    years 1-9999.
    """
    if not math.isfinite(timestamp_ms):
        raise ValueError(f"timestamp {timestamp_ms!r} is not finite")
    if not MIN_TIMESTAMP_MS <= timestamp_ms <= MAX_TIMESTAMP_MS:
        raise ValueError(f"timestamp {timestamp_ms!r} ms is outside years 1-9999")
    return int(timestamp_ms) // 1000


@dataclasses.dataclass(frozen=True)
class Match:
    """The outcome of the window rule for one example."""

    kind: str  # "success", "lookup" or "value"
    value: Optional[float] = None
    reason: str = ""


def match_readings(readings: Readings, t_s: int, tolerance_s: int,
                   good_flags_only: bool = False) -> Match:
    """Readings within ``t_s +- tolerance_s`` (inclusive): exactly one -> success."""
    lo = int(np.searchsorted(readings.times, t_s - tolerance_s, side="left"))
    hi = int(np.searchsorted(readings.times, t_s + tolerance_s, side="right"))
    hits = list(range(lo, hi))
    if good_flags_only:
        hits = [i for i in hits if readings.flags[i] == "G"]
    if not hits:
        what = "no reading flagged G" if good_flags_only else "no reading"
        return Match("lookup", reason=f"{what} within +-{tolerance_s} s of {_iso(t_s)}")
    if len(hits) > 1:
        listed = ", ".join(f"{_iso(int(readings.times[i]))}={readings.values[i]:g} "
                           f"[{readings.flags[i]}]" for i in hits)
        return Match("value", reason=f"{len(hits)} readings within +-{tolerance_s} s of "
                                     f"{_iso(t_s)}: {listed}")
    i = hits[0]
    return Match("success", float(readings.values[i]),
                 reason=f"reading {_iso(int(readings.times[i]))} flag {readings.flags[i]}")


def _iso(t_s: int) -> str:
    return np.datetime64(int(t_s), "s").astype(str) + "Z"
