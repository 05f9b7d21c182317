"""Step 5 of the merge: re-read each shard and write its labelled examples.

Labelled examples are copied byte for byte, ISMN-labelled ones get
``sm_0_5`` appended to their bytes, the rest are left out (their failure is
recorded by the earlier steps). Outputs are written atomically under the
input shard's name; ``plan_outputs`` refuses a plan that would lose or
destroy an input.
"""

import dataclasses
import math
import logging
import posixpath
import time
from typing import Dict, List, Optional, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.dataset import example_proto, schema, tfrecord_io
from transforms.dataset.progress import ShardProgress
from transforms.merge.accounting import COUNTERS, ShardWrite

_LOG = logging.getLogger(__name__)


def rewrite_shard(shard: str, output_path: str, labels: Dict[int, float],
                  progress: Optional[ShardProgress] = None) -> Tuple[int, int]:
    """Write ``shard``'s labelled examples to ``output_path`` (atomically).

    Already labelled examples are copied byte for byte; examples whose index
    is in ``labels`` get ``sm_0_5`` appended; the others are left out (their
    failure is recorded elsewhere). Stops quietly at a corrupt tail (reported
    by the scan) and writes what came before it.

    Args:
        shard: the input shard's path.
        output_path: the merged shard's path.
        labels: record index -> the ISMN reading that labels it.
        progress: where the walk reports progress (None: nowhere).

    Returns:
        ``(written, merged)``: examples written, and how many of them were
        labelled from ``labels``.
    """
    written = merged = 0
    progress = progress or ShardProgress(None, "write", shard)
    with tfrecord_io.AtomicShardWriter(output_path) as writer:
        try:
            for index, record in enumerate(tfrecord_io.read_shard(
                    shard, lambda b: progress.update(written, b))):
                if index in labels:
                    writer.write(example_proto.append_float_feature(
                        record, schema.MERGED_LABEL_KEY, labels[index]))
                    merged += 1
                elif _is_labelled(record):
                    writer.write(record)
                else:
                    continue
                written += 1
        except tfrecord_io.CorruptShardError:
            pass
    progress.update(written, done=True)
    return written, merged


def _is_labelled(record: bytes) -> bool:
    try:
        return bool(example_proto.read_features(record, schema.LABEL_KEYS))
    except example_proto.MalformedExampleError:
        return False


class RewriteShardFn(beam.DoFn):
    def __init__(self, output_dir: str, progress_dir: Optional[str] = None):
        self.output_dir = output_dir
        self.progress_dir = progress_dir
        self.written = COUNTERS("examples_written")
        self.nonfinite = COUNTERS("nonfinite_labels")

    def process(self, element):
        shard, grouped = element
        labels = dict(grouped["labels"])
        if not grouped["shard"]:  # labels for a shard not in the input
            raise RuntimeError(f"labels for {shard}, which is not an input shard")
        start = time.time()
        out = FileSystems.join(self.output_dir, posixpath.basename(shard))
        if same_file(out, shard):
            raise RuntimeError(f"refusing to overwrite input shard {shard} with its merged "
                               f"version: choose an --output_dir other than the input folder")
        written, merged = rewrite_shard(shard, out, labels,
                                        ShardProgress(self.progress_dir, "write", shard))
        if merged != len(labels):
            raise RuntimeError(f"{shard}: {len(labels)} labels but {merged} examples merged; "
                               "did the shard change during the run?")
        self.written.inc(written)
        _LOG.info("wrote %s: %d examples (%d merged from ISMN) in %.1f s",
                  out, written, merged, time.time() - start)
        nonfinite = sum(not math.isfinite(value) for value in labels.values())
        if nonfinite:
            self.nonfinite.inc(nonfinite)
        yield shard, ShardWrite(out, written, merged, nonfinite)


@dataclasses.dataclass
class RewriteShards(beam.PTransform):
    """``{"shards": paths, "labels": (shard, (index, value))}`` -> ``(shard, write report)``."""

    output_dir: str
    progress_dir: Optional[str] = None

    def expand(self, inputs):
        return ({"shard": inputs["shards"] | "Key shards" >> beam.Map(lambda s: (s, None)),
                 "labels": inputs["labels"]}
                | "Group labels by shard" >> beam.CoGroupByKey()
                | "Write merged shards" >> beam.ParDo(
                    RewriteShardFn(self.output_dir, self.progress_dir)))


def plan_outputs(input_paths: List[str], output_dir: str) -> Dict[str, str]:
    """Where each input shard is merged to: the same file name in ``output_dir``.

    Args:
        input_paths: the input shard paths.
        output_dir: the merge's output folder.

    Returns:
        Input path -> output path.

    Raises:
        ValueError: two inputs share a file name (one would be lost), or an
            output would replace an input (the input would be destroyed).
    """
    by_name: Dict[str, List[str]] = {}
    for path in input_paths:
        by_name.setdefault(posixpath.basename(path), []).append(path)
    clashes = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    if clashes:
        listed = "; ".join(" and ".join(paths) for paths in clashes.values())
        raise ValueError(f"input shards with the same file name would be merged into one "
                         f"output file: {listed}. Merge each folder into its own --output_dir")
    plan = {path: FileSystems.join(output_dir, name) for name, (path,) in by_name.items()}
    for out in plan.values():
        replaced = next((p for p in plan if same_file(out, p)), None)
        if replaced is not None:
            raise ValueError(f"output {out} would replace input shard {replaced}: --output_dir "
                             f"{output_dir} must not be the folder of the input shards")
    return plan


def same_file(a: str, b: str) -> bool:
    """``a`` and ``b`` name the same file (local paths resolved, links followed)."""
    if "://" in a or "://" in b:
        return a.rstrip("/") == b.rstrip("/")
    import os
    return os.path.realpath(a) == os.path.realpath(b)
