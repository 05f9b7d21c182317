"""Progress lines for local runs: shards done of total, examples, MB/s, ETA.

A local run over hundreds of GB would otherwise show nothing for hours. The
work is spread over worker processes (``--direct_running_mode
multi_processing``), so progress goes through the file system, which every
local worker shares with the driver:

* a DoFn keeps a ``ShardProgress`` per shard it reads and calls ``update`` as
  it goes; at most every two seconds (and when the shard is done) it replaces
  one small JSON file, ``<folder>/<stage>-<shard hash>.json``, atomically;
* the driver runs a ``ProgressReporter`` thread that reads the folder every
  ``interval`` seconds and logs one line.

On Dataflow or Flink the folder is None and nothing is written: the Beam
counters (``examples_read``, ``shards_read``, ...) show progress in the
runner's own monitoring.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
import time
from typing import Dict, Optional

_LOG = logging.getLogger(__name__)
_WRITE_EVERY_S = 2.0


@dataclasses.dataclass
class ShardProgress:
    """One shard's progress through one stage, written into ``folder``."""

    folder: Optional[str]
    stage: str
    shard: str
    examples: int = 0
    bytes_read: int = 0
    _written_at: float = 0.0

    def update(self, examples: Optional[int] = None, bytes_read: Optional[int] = None,
               done: bool = False) -> None:
        if examples is not None:
            self.examples = examples
        if bytes_read is not None:
            self.bytes_read = bytes_read
        now = time.monotonic()
        if self.folder is None or (not done and now - self._written_at < _WRITE_EVERY_S):
            return
        self._written_at = now
        name = hashlib.sha1(self.shard.encode()).hexdigest()[:16]
        path = os.path.join(self.folder, f"{self.stage}-{name}.json")
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump({"stage": self.stage, "examples": self.examples,
                           "bytes": self.bytes_read, "done": done}, f)
            os.replace(tmp, path)
        except OSError as e:  # progress is best effort; the run goes on
            _LOG.debug("progress file %s: %s", path, e)


def read_board(folder: str) -> Dict[str, Dict[str, int]]:
    """Per stage: ``shards_done``, ``examples`` and ``bytes`` so far."""
    board: Dict[str, Dict[str, int]] = {}
    for entry in os.listdir(folder):
        if not entry.endswith(".json"):
            continue
        try:
            with open(os.path.join(folder, entry)) as f:
                p = json.load(f)
        except (OSError, ValueError):
            continue  # replaced while we read it
        s = board.setdefault(p["stage"], {"shards_done": 0, "examples": 0, "bytes": 0})
        s["shards_done"] += bool(p["done"])
        s["examples"] += p["examples"]
        s["bytes"] += p["bytes"]
    return board


def progress_line(board: Dict[str, Dict[str, int]], stages, num_shards: int, total_bytes: int,
                  seconds: float) -> str:
    """``read 3/10 shards, write 1/10 shards; 1234 examples; 85.3 MB/s; ETA 0:02:10``.

    ``stages`` are the passes over the input, in order; the examples shown are
    those of the first; the rate and ETA count the compressed bytes of every pass.
    """
    parts = [f"{stage} {board.get(stage, {}).get('shards_done', 0)}/{num_shards} shards"
             for stage in stages]
    examples = board.get(stages[0], {}).get("examples", 0)
    done = sum(board.get(stage, {}).get("bytes", 0) for stage in stages)
    rate = done / seconds if seconds > 0 else 0.0
    todo = max(total_bytes * len(stages) - done, 0)
    eta = time.strftime("%H:%M:%S", time.gmtime(todo / rate)) if rate > 0 else "unknown"
    return (f"progress: {', '.join(parts)}; {examples} examples; {rate / 1e6:.1f} MB/s; "
            f"ETA {eta}")


class ProgressReporter:
    """Logs ``progress_line`` every ``interval`` seconds while the run lasts.

    Use as a context manager around the run; ``folder`` is what the DoFns get.
    """

    def __init__(self, folder: str, stages, num_shards: int, total_bytes: int,
                 interval: float = 10.0):
        self.folder, self.stages = folder, tuple(stages)
        self.num_shards, self.total_bytes, self.interval = num_shards, total_bytes, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self._start = time.monotonic()

    def line(self) -> str:
        return progress_line(read_board(self.folder), self.stages, self.num_shards,
                             self.total_bytes, time.monotonic() - self._start)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            _LOG.info("%s", self.line())

    def __enter__(self) -> "ProgressReporter":
        self._start = time.monotonic()
        if self.interval > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
