"""The failure record: one line of a flow's ``failures.jsonl``.

Every flow reports an example it could not use the same way: which shard
(``path``, and its file name as ``shard``), which record (``index``), what
kind of failure (``FAILURE_KINDS``) and why, with the example's sensor and
time when they could be read.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from typing import Dict, Optional

#: Every kind of failure a flow records: the merge's lookup (no ISMN sensor or
#: reading), value (reading outside [0, 1]), and every flow's malformed
#: (not a tf.train.Example, or its id fields unusable), corrupt (unreadable
#: shard tail) and decode (inference: bands missing or of the wrong size).
FAILURE_KINDS = ("lookup", "value", "malformed", "corrupt", "decode")


@dataclasses.dataclass(frozen=True)
class Failure:
    """One example a flow could not use.

    Attributes:
        path: the shard's path as matched (local or ``gs://``).
        index: the record's 0-based position in the shard.
        kind: one of ``FAILURE_KINDS``.
        reason: what was wrong, in full.
        sensor_id: the example's ``sensor_id`` when it could be read.
        timestamp: the example's ``timestamp`` when it could be read.
        ismn_file: the ISMN data file that could not be read, when that is
            the reason (merge only).

    Raises:
        ValueError: ``kind`` is not one of ``FAILURE_KINDS``.
    """

    path: str
    index: int
    kind: str
    reason: str
    sensor_id: Optional[str] = None
    timestamp: Optional[float] = None
    ismn_file: Optional[str] = None

    def __post_init__(self):
        if self.kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {self.kind!r} (one of {FAILURE_KINDS})")

    @property
    def shard(self) -> str:
        """The shard's file name."""
        return posixpath.basename(self.path)

    def to_dict(self) -> Dict[str, object]:
        """The record's JSON object (``ismn_file`` only when set)."""
        record = {"shard": self.shard, "path": self.path, "index": self.index,
                  "sensor_id": self.sensor_id, "timestamp": self.timestamp,
                  "kind": self.kind, "reason": self.reason}
        if self.ismn_file is not None:
            record["ismn_file"] = self.ismn_file
        return record

    def to_json(self) -> str:
        """One line of ``failures.jsonl`` (keys sorted, no newline)."""
        return json.dumps(self.to_dict(), sort_keys=True)


def malformed(shard: str, index: int, error: Exception) -> Failure:
    """The failure of a record that is not a tf.train.Example."""
    return Failure(shard, index, "malformed", f"not a tf.train.Example: {error}")
