"""The merge's accounting: its counters and one report per input shard.

Every record read ends as a written example or a failure record, so for each
shard ``examples_read == written + failures`` (``accounted``).
"""

from typing import Dict

from transforms.dataset import records

NAMESPACE = "combine_ismn_data"
COUNTERS = records.FlowCounters(NAMESPACE)
#: the failure kinds of the merge, in report order
FAILURE_KINDS = ("lookup", "value", "malformed", "corrupt")
assert set(FAILURE_KINDS) <= set(records.FAILURE_KINDS)


def shard_report(element) -> Dict[str, object]:
    """One shard's accounting, from the pipeline's data (exact even when a
    runner retries bundles, unlike counters on some local runners)."""
    path, grouped = element
    (scan,), (write,) = grouped["scan"], grouped["write"]
    failed = list(grouped["failed"])
    kinds = [kind for kind, _ in failed]
    report = dict(scan)
    report.update(written=write["written"], success=write["merged"],
                  nonfinite_labels=write.get("nonfinite_labels", 0),
                  failures={k: kinds.count(k) for k in FAILURE_KINDS if k in kinds},
                  sensor_type_mismatch=len(list(grouped["mismatch"])),
                  unreadable_ismn_files=sorted({f for _, f in failed if f}))
    report["examples_read"] = scan["records"] + (0 if scan["complete"] else 1)
    report["accounted"] = report["examples_read"] == write["written"] + len(kinds)
    return report
