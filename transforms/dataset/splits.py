"""Which split (train, validation, test) each sensor belongs to.

``sensor_split``: a sensor's split is fixed by the first 8 bytes of
``sha256(sensor_id)`` read as a big-endian integer ``h``; ``u = h / 2**64``;
train if ``u < train_fraction``, validation if
``u < train_fraction + validation_fraction``, test otherwise. Every run and
every tool (``evaluate``, ``train``) agree on it. ``--split_by file`` reads
``sensor_id,split`` lines instead (``read_split_file``).
"""

import csv
import dataclasses
import hashlib
import io
from typing import Dict, Optional

from transforms.dataset import schema
from transforms.dataset.schema import SPLITS


def sensor_split(sensor_id: str, train_fraction: float = 0.7,
                 validation_fraction: float = 0.15) -> str:
    h = int.from_bytes(hashlib.sha256(sensor_id.encode("utf-8")).digest()[:8], "big")
    u = h / 2.0 ** 64
    if u < train_fraction:
        return "train"
    if u < train_fraction + validation_fraction:
        return "validation"
    return "test"


def read_split_file(text: str) -> Dict[str, str]:
    """``sensor_id,split`` lines (a header line ``sensor_id,split`` is allowed)."""
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

    def split(self, sensor_id: str) -> Optional[str]:
        if self.single_split is not None:
            return self.single_split
        if self.by_sensor_file is not None:
            return self.by_sensor_file.get(sensor_id)
        return sensor_split(sensor_id, self.train_fraction, self.validation_fraction)
