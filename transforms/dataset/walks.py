"""Walking shards: one shard's records in order (``ShardReader``), and
several walks at once in background threads (``ConcurrentWalks``).

* ``ShardReader``: a shard's records in order with progress reporting; an
  unreadable tail ends the walk and becomes its ``corrupt`` failure. The read
  count (``examples_read``) includes that unreadable record, so counters of a
  flow add up to it.
* ``ConcurrentWalks``: several walks (shards) at once, each in a background
  thread, their items merged into one bounded queue, so reading and inflating
  overlaps the work on what was read (one core inflates one gzip stream, so
  one shard at a time cannot keep a model fed).
* ``WalkingDoFn``: a Beam DoFn whose elements are such walks.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Dict, Iterable, Iterator, Optional, Tuple, TypeVar

import apache_beam as beam

from transforms.dataset import tfrecord_io
from transforms.dataset.failures import Failure
from transforms.dataset.progress import ShardProgress

_LOG = logging.getLogger(__name__)


class ShardReader:
    """``for index, record in ShardReader(shard, progress_dir)``: the shard's
    records in order. A ``CorruptShardError`` ends the walk (logged); then
    ``corrupt`` holds its failure record. ``examples_read`` counts the records
    read plus the unreadable one."""

    def __init__(self, shard: str, progress_dir: Optional[str] = None, stage: str = "read"):
        self.shard = shard
        self.progress = ShardProgress(progress_dir, stage, shard)
        self.records = 0
        self.corrupt: Optional[Failure] = None
        self.error: Optional[tfrecord_io.CorruptShardError] = None

    def __iter__(self) -> Iterator[Tuple[int, bytes]]:
        try:
            for record in tfrecord_io.read_shard(
                    self.shard, lambda b: self.progress.update(self.records, b)):
                index, self.records = self.records, self.records + 1
                yield index, record
        except tfrecord_io.CorruptShardError as e:
            _LOG.error("shard %s cannot be read past record %d: %s", self.shard, e.index, e.reason)
            self.error = e
            self.corrupt = Failure(self.shard, e.index, "corrupt", e.reason)
        self.progress.update(self.records, done=True)

    @property
    def examples_read(self) -> int:
        return self.records + (1 if self.corrupt else 0)


T = TypeVar("T")
_END = object()


class ConcurrentWalks:
    """Several walks run at once, each in a background thread, their items
    merged into one queue of at most ``depth`` items (the memory bound).

    ``start(key, items)`` begins a walk; ``take(until=...)`` yields
    ``(key, item)`` from every running walk as they come, and ``(key, END)``
    when a walk is done, until the walk ``until`` is done (or, without
    ``until``, until one walk is; ``take_all`` until all are). A walk's
    exception is raised by ``take`` after the items it produced before it.
    Each walk's items keep their order. ``close`` stops every walk.
    """

    END = _END

    def __init__(self, depth: int):
        self._queue: "queue.Queue" = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._threads: Dict[object, threading.Thread] = {}

    @property
    def running(self) -> int:
        return len(self._threads)

    def start(self, key, items: Iterable[T]) -> None:
        def walk():
            try:
                for item in items:
                    if not self._put((key, item, None)):
                        return
                self._put((key, _END, None))
            except BaseException as e:  # handed to the consumer
                self._put((key, _END, e))

        thread = threading.Thread(target=walk, name=f"walk-{len(self._threads)}", daemon=True)
        self._threads[key] = thread
        thread.start()

    def _put(self, entry) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def take(self, until=_END) -> Iterator[Tuple[object, object]]:
        while self._threads:
            key, item, error = self._queue.get()
            if item is _END:
                self._threads.pop(key).join()
                if error is not None:
                    raise error
                yield key, _END
                if until is _END or key == until:
                    return
            else:
                yield key, item

    def take_all(self) -> Iterator[Tuple[object, object]]:
        while self._threads:
            yield from self.take()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads.values():
            thread.join()
        self._threads.clear()



def in_global_window(outputs: Iterable) -> Iterator:
    """What a DoFn's ``finish_bundle`` yields for ``outputs`` produced by its
    walks: each value, tagged (``TaggedOutput``) or not, as a value of the
    global window (where the shards and tiles these walks read are)."""
    from apache_beam.transforms.window import GlobalWindows

    for output in outputs:
        if isinstance(output, beam.pvalue.TaggedOutput):
            yield beam.pvalue.TaggedOutput(output.tag, GlobalWindows.windowed_value(output.value))
        else:
            yield GlobalWindows.windowed_value(output)


class WalkingDoFn(beam.DoFn):
    """A DoFn that walks each element in a background thread
    (``ConcurrentWalks``), so reading one overlaps the work on another's.

    ``process`` calls ``yield from self.walk(key, items)``: the walk starts,
    and once ``parallel`` walks are running the outputs of what they produced
    come until one of them ends. ``finish_bundle`` yields the rest, in the
    global window: every walk of a bundle ends before the bundle does.
    Subclasses set ``depth`` (items read ahead, all walks together) and
    ``parallel`` (walks at once), and turn ``(key, item)`` pairs, with
    ``ConcurrentWalks.END`` as a walk's last item, into outputs in
    ``outputs(taken)``.
    """

    depth = 10
    parallel = 2

    def start_bundle(self):
        self.teardown()  # the walks of a bundle that failed, if any
        self._walks = ConcurrentWalks(self.depth)

    def walk(self, key, items: Iterable) -> Iterator:
        """Start walking ``items`` as ``key``; yields outputs when ``parallel`` walks run."""
        self._walks.start(key, items)
        if self._walks.running >= self.parallel:  # one finishes before the next starts
            yield from self.outputs(self._walks.take())

    def finish_bundle(self):
        yield from in_global_window(self.outputs(self._walks.take_all()))

    def teardown(self):
        walks = getattr(self, "_walks", None)
        if walks is not None:
            walks.close()

    def outputs(self, taken: Iterable) -> Iterator:
        """The outputs of ``(key, item)`` pairs taken from the walks."""
        raise NotImplementedError
