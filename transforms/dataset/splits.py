"""Which split (train, validation, test) each sensor belongs to.

``sensor_split``: a sensor's split is fixed by the first 8 bytes of
``sha256(sensor_id)`` read as a big-endian integer ``h``; ``u = h / 2**64``;
train if ``u < train_fraction``, validation if
``u < train_fraction + validation_fraction``, test otherwise. Every run and
every tool (``evaluate``, ``train``) agree on it. ``--split_by file`` reads
``sensor_id,split`` lines instead (``read_split_file``). ``--split_by time``
is a temporal hold-out: an example's split is fixed by the UTC year of its
timestamp (``test_years``, ``validation_years``, train otherwise), because
random or site-only splits overstate skill where the same season or the
same year is seen in training.
"""

import csv
import dataclasses
import datetime
import hashlib
import io
import math
from typing import Dict, Optional, Tuple

from transforms.dataset import schema
from transforms.dataset.schema import SPLITS


def sensor_split(sensor_id: str, train_fraction: float = 0.7,
                 validation_fraction: float = 0.15) -> str:
    """The split of ``sensor_id`` by the hash rule: the first 8 bytes of its
    SHA-256 as a fraction u of 2^64; ``train`` when u < ``train_fraction``,
    ``validation`` below ``train_fraction + validation_fraction``, else ``test``."""
    h = int.from_bytes(hashlib.sha256(sensor_id.encode("utf-8")).digest()[:8], "big")
    u = h / 2.0 ** 64
    if u < train_fraction:
        return "train"
    if u < train_fraction + validation_fraction:
        return "validation"
    return "test"


def read_split_file(text: str) -> Dict[str, str]:
    """Sensor id -> split from ``text``, a split file's ``sensor_id,split``
    lines (a header line ``sensor_id,split`` is allowed)."""
    out = {}
    for row in csv.reader(io.StringIO(text)):
        if not row or row[0] == "sensor_id":
            continue
        if len(row) != 2 or row[1] not in SPLITS:
            raise ValueError(f"split file line {row!r}: expected sensor_id,<{'|'.join(SPLITS)}>")
        out[row[0]] = row[1]
    return out


def network_of(sensor_id: str) -> str:
    return sensor_id.split(schema.SENSOR_ID_SEPARATOR)[0]


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    train_fraction: float = 0.7
    validation_fraction: float = 0.15
    by_sensor_file: Optional[Dict[str, str]] = None  # sensor_id -> split
    single_split: Optional[str] = None  # every sensor in this split (--split_by none: "all")
    test_years: Optional[Tuple[int, ...]] = None  # --split_by time: split by the year
    validation_years: Tuple[int, ...] = ()

    def split(self, sensor_id: str, timestamp_ms: Optional[float] = None) -> Optional[str]:
        """The split of an example of ``sensor_id`` (taken at ``timestamp_ms``,
        which the temporal split needs: without it, None)."""
        if self.single_split is not None:
            return self.single_split
        if self.test_years is not None:
            year = year_of(timestamp_ms)
            if year is None:
                return None
            if year in self.test_years:
                return "test"
            return "validation" if year in self.validation_years else "train"
        if self.by_sensor_file is not None:
            return self.by_sensor_file.get(sensor_id)
        return sensor_split(sensor_id, self.train_fraction, self.validation_fraction)


def year_of(timestamp_ms: Optional[float]) -> Optional[int]:
    """The UTC year of Unix milliseconds (None when absent or not a date)."""
    if timestamp_ms is None or not math.isfinite(timestamp_ms):
        return None
    try:
        return datetime.datetime.fromtimestamp(timestamp_ms / 1000, datetime.timezone.utc).year
    except (OverflowError, OSError, ValueError):
        return None
