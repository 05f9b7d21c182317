"""The merge's accounting: its counters and one report per input shard.

Every record read ends as a written example or a failure record, so for each
shard ``examples_read == written + failures`` (``accounted``). A shard's
``ShardReport`` (a line of ``shards.jsonl``) is put together from what the
scan saw (``ScanReport``), what the rewrite wrote (``ShardWrite``) and the
shard's failure records.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Dict, List, NamedTuple, Optional

from transforms.dataset.counters import FlowCounters
from transforms.dataset.failures import FAILURE_KINDS as ALL_FAILURE_KINDS

NAMESPACE = "combine_ismn_data"
COUNTERS = FlowCounters(NAMESPACE)
#: the failure kinds of the merge, in report order
FAILURE_KINDS = ("lookup", "value", "malformed", "corrupt")
assert set(FAILURE_KINDS) <= set(ALL_FAILURE_KINDS)


@dataclasses.dataclass(frozen=True)
class ScanReport:
    """What the scan of one input shard saw.

    Attributes:
        shard: the shard's file name; path: its path as matched.
        complete: every record could be read (no unreadable tail).
        records: records read (the unreadable one not included).
        already_labelled: examples that have an ``sm_0_5``/``sm_5_5`` already.
        ismn_examples: examples to be labelled from ISMN.
        seconds: the scan's wall time.
        error: why the shard could not be read to its end (None if complete).
    """

    shard: str
    path: str
    complete: bool
    records: int
    already_labelled: int
    ismn_examples: int
    seconds: float
    error: Optional[str] = None


class ShardWrite(NamedTuple):
    """What the rewrite of one shard wrote: its ``output`` path, the examples
    ``written``, how many of them were ``merged`` from ISMN readings, and how
    many of those readings were not finite (``nonfinite_labels``)."""

    output: str
    written: int
    merged: int
    nonfinite_labels: int = 0


@dataclasses.dataclass(frozen=True)
class ShardReport:
    """One input shard's accounting: a line of ``shards.jsonl``.

    Attributes:
        scan: what the scan saw (its fields are the line's first keys).
        written: examples written to the merged shard.
        success: examples labelled from ISMN.
        nonfinite_labels: of those, labels that are NaN/inf readings.
        failures: failure kind -> count (kinds with none left out).
        sensor_type_mismatch: examples labelled by a sensor of another type.
        unreadable_ismn_files: ISMN files whose reading failed, sorted.
        examples_read: records read, the unreadable one included.
        accounted: ``examples_read == written + failures``.
    """

    scan: ScanReport
    written: int
    success: int
    nonfinite_labels: int
    failures: Dict[str, int]
    sensor_type_mismatch: int
    unreadable_ismn_files: List[str]
    examples_read: int
    accounted: bool

    def to_dict(self) -> Dict[str, object]:
        """The report as one flat JSON object (``error`` only when set)."""
        out = {k: v for k, v in dataclasses.asdict(self.scan).items()
               if k != "error" or v is not None}
        out.update((f.name, getattr(self, f.name)) for f in dataclasses.fields(self)
                   if f.name != "scan")
        return out

    def to_json(self) -> str:
        """One line of ``shards.jsonl`` (keys sorted, no newline)."""
        return json.dumps(self.to_dict(), sort_keys=True)


def shard_report(element) -> ShardReport:
    """One shard's accounting, from the pipeline's data (exact even when a
    runner retries bundles, unlike counters on some local runners).

    Args:
        element: ``(path, {"scan": [ScanReport], "write": [ShardWrite],
            "failed": [(kind, ismn_file or None), ...], "mismatch": [1, ...]})``.
    """
    path, grouped = element
    (scan,), (write,) = grouped["scan"], grouped["write"]
    failed = list(grouped["failed"])
    kinds = [kind for kind, _ in failed]
    examples_read = scan.records + (0 if scan.complete else 1)
    return ShardReport(
        scan=scan, written=write.written, success=write.merged,
        nonfinite_labels=write.nonfinite_labels,
        failures={k: kinds.count(k) for k in FAILURE_KINDS if k in kinds},
        sensor_type_mismatch=len(list(grouped["mismatch"])),
        unreadable_ismn_files=sorted({f for _, f in failed if f}),
        examples_read=examples_read, accounted=examples_read == write.written + len(kinds))
