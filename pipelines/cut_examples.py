"""Cut 512 x 512 examples in the released schema from a scene at given points.

    python -m pipelines.cut_examples --scene_path scene/ --points points.csv \
        --timestamp 2021-06-01T10:30:00Z --output_dir examples/

``--points``: a CSV with the columns ``sensor_id,lat,lon`` (WGS84). Writes
``<output_dir>/data-00000-of-00001.tfrecord.gz`` (gzipped TFRecord, one
``tf.train.Example`` per point that could be cut, in the order of the CSV)
and ``<output_dir>/failures.jsonl`` (one line per point that could not:
its sensor_id and why). The examples feed ``run_inference``, the released
``run_inference.py`` or ``combine_ismn_data`` (see ``transforms.mapping.examples``
for what they hold). A plain loop, not a Beam pipeline: a scene's points are few.

``--compare_with 'shards/*.tfrecord.gz'`` checks a scene's encoding instead:
every example of the shards whose window lies in the scene is cut again
from the scene at its centre and compared band by band (mean absolute
difference and correlation, pooled), printed as a table and written to
``<output_dir>/compare.json``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import sys
from typing import List, Optional

from transforms import runtime
from transforms.dataset import files, tfrecord_io
from transforms.mapping import SceneError, read_scene
from transforms.mapping.examples import Point, compare_with_examples, cut_example


def timestamp_ms(text: str) -> float:
    """``2021-06-01T10:30:00Z`` (UTC when no zone) or Unix milliseconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise runtime.UsageError(f"--timestamp {text!r} is neither an ISO time nor Unix "
                                 f"milliseconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp() * 1000.0


def read_points(path: str) -> List[Point]:
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return [Point(r["sensor_id"], float(r["lat"]), float(r["lon"])) for r in rows]
    except OSError as e:
        raise runtime.UsageError(f"--points {path}: {e.strerror}") from e
    except (KeyError, TypeError, ValueError) as e:
        raise runtime.InputError(f"{path}: needs the columns sensor_id,lat,lon with numbers "
                                 f"({e})") from e


def compare(scene, pattern: str, output_dir: str) -> dict:
    """``--compare_with``: the table printed, ``compare.json`` written."""
    try:
        found = compare_with_examples(scene, pattern)
    except FileNotFoundError as e:
        raise runtime.UsageError(f"--compare_with: {e}") from e
    lines = [f"{found['examples']} examples compared ({found['skipped']} outside the scene "
             f"or on nodata)", "", "| band | mean abs. difference | r |", "| --- | ---: | ---: |"]
    for band, m in found["bands"].items():
        mad = "–" if m["mean_abs_diff"] is None else f"{m['mean_abs_diff']:.3f}"
        r = "–" if m["r"] is None else f"{m['r']:.4f}"
        lines.append(f"| {band} | {mad} | {r} |")
    print("\n".join(lines))
    files.write_json_atomically(os.path.join(output_dir, "compare.json"), found)
    return found


def run(argv: Optional[List[str]] = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m pipelines.cut_examples",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--scene_path", required=True)
    p.add_argument("--points", default=None, help="CSV: sensor_id,lat,lon")
    p.add_argument("--timestamp", default=None, help="ISO time (UTC) or Unix milliseconds")
    p.add_argument("--compare_with", default=None,
                   help="glob of released shards: cut each example that lies in the scene "
                        "again from the scene and compare band by band (mean absolute "
                        "difference, correlation): a check of the scene's encoding")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--size", type=int, default=512, help="example side (512 in the release)")
    args = p.parse_args(argv)
    if not args.compare_with and not (args.points and args.timestamp):
        raise runtime.UsageError("give --points and --timestamp, or --compare_with")
    try:
        scene = read_scene(args.scene_path)
    except SceneError as e:
        raise runtime.InputError(str(e)) from e
    os.makedirs(args.output_dir, exist_ok=True)
    if args.compare_with:
        return compare(scene, args.compare_with, args.output_dir)
    when = timestamp_ms(args.timestamp)
    points = read_points(args.points)
    examples, failures = [], []
    for point in points:
        serialized, why = cut_example(scene, point, when, args.size)
        if serialized is None:
            failures.append({"sensor_id": point.sensor_id, "lat": point.lat, "lon": point.lon,
                             "reason": why})
        else:
            examples.append(serialized)
    out = os.path.join(args.output_dir, tfrecord_io.shard_name(0, 1))
    tfrecord_io.write_shard(out, examples)
    files.write_bytes_atomically(os.path.join(args.output_dir, "failures.jsonl"), "".join(
        json.dumps(r, sort_keys=True) + "\n" for r in failures).encode())
    print(f"cut {len(examples)} examples of {len(points)} points into {out}; "
          f"{len(failures)} points could not be cut (failures.jsonl)")
    return {"examples": len(examples), "failures": failures, "output": out}


def main(argv: Optional[List[str]] = None) -> int:
    try:
        run(argv)
        return 0
    except runtime.UsageError as e:
        print(f"cut_examples: error: {e}", file=sys.stderr)
        return 2
    except runtime.InputError as e:
        print(f"cut_examples: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
