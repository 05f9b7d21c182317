"""Memory and speed of ``pipelines.train`` at the release's image size.

    python benchmarks/train_benchmark.py --work_dir bench_data/train --small 16 --image_size 512

Builds (once, reused) two datasets of exactly ``--small`` and 4x as many
labelled examples at ``--image_size`` (generated, merged with the generated
ISMN download, then only labelled examples kept, in two shards each), runs
``python -m pipelines.train --image_size N --epochs 1`` on each as a whole
process, and prints:

* peak RSS of each run (``benchmarks/measure.py``: the process, the Beam
  step and training in it) and the growth from N to 4N examples;
* bytes per example: decoded float32 inputs (what was stored per transformed
  example before the compact format: the full image as float32), the compact
  example, and its gzip size on disk;
* input-pipeline examples/s (``transforms.training.data.dataset`` alone,
  shuffling as training does, decoding and normalising) and training
  examples/s (from ``training.json``), so a GPU's wait on input shows.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from measure import measured  # noqa: E402

from transforms import synthetic  # noqa: E402
from transforms.dataset import keys, schema, tfrecord_io  # noqa: E402
from transforms.dataset.walks import ShardReader  # noqa: E402


def labelled_pool(work_dir: str, image_size: int, wanted: int, seed: int):
    """At least ``wanted`` labelled examples at ``image_size`` (merged shards)."""
    merged = os.path.join(work_dir, f"pool-{image_size}", "merged")
    if glob.glob(os.path.join(merged, "*.tfrecord.gz")):
        return sorted(glob.glob(os.path.join(merged, "*.tfrecord.gz")))
    per_shard = (wanted * 3 // 2) // 4 + 1  # ~80 % of generated examples end labelled
    paths = synthetic.generate(synthetic.SampleConfig(
        output_dir=os.path.join(work_dir, f"pool-{image_size}", "sample"), num_shards=4,
        examples_per_shard=per_shard, image_size=image_size, seed=seed, ismn_days=120),
        log=lambda *_: None)
    subprocess.run([sys.executable, "-m", "pipelines.combine_ismn_data", "--input_data_path",
                    paths.shards_glob, "--ismn_data_path", paths.ismn_path, "--output_dir",
                    merged], check=True, cwd=ROOT, capture_output=True)
    return sorted(glob.glob(os.path.join(merged, "*.tfrecord.gz")))


def dataset_of(pool, n: int, folder: str) -> str:
    """The first ``n`` labelled examples of ``pool`` as two shards in ``folder``."""
    pattern = os.path.join(folder, "data-*-of-00002.tfrecord.gz")
    if len(glob.glob(pattern)) == 2:
        return pattern
    chosen = []
    for shard in pool:
        for _, record in ShardReader(shard):
            if keys.label_of(keys.first_values(record, schema.LABEL_KEYS)) is not None:
                chosen.append(record)
            if len(chosen) == n:
                break
        if len(chosen) == n:
            break
    if len(chosen) < n:
        raise SystemExit(f"only {len(chosen)} labelled examples in the pool, {n} wanted")
    os.makedirs(folder, exist_ok=True)
    half = n // 2
    for i, part in enumerate((chosen[:half], chosen[half:])):
        tfrecord_io.write_shard(os.path.join(folder, tfrecord_io.shard_name(i, 2)), part)
    return pattern


def timed_train(pattern: str, out: str, image_size: int, epochs: int):
    """Run train as a whole process: (seconds, peak RSS in MB, training.json)."""
    seconds, peak_mb, _, _ = measured([sys.executable, "-m", "pipelines.train", "--input_data_path",
                                       pattern, "--output_dir", out, "--image_size",
                                       str(image_size), "--epochs", str(epochs)], cwd=ROOT)
    with open(os.path.join(out, "training.json")) as f:
        return seconds, peak_mb, json.load(f)


def input_pipeline_rate(out: str, image_size: int, at_least: int = 200) -> float:
    """Examples/s of the training input pipeline alone (shuffled, parsed, normalised)."""
    from transforms.training import data, preprocess

    stats = preprocess.transformed_statistics(out)
    norm = preprocess.normalisation_from(stats)
    ds = data.dataset(data.transformed_files(out, "train"), data.window_side(image_size), norm,
                      batch_size=16, shuffle_seed=0).repeat()
    seen, start = 0, None
    for x, y in ds:
        if start is None:  # the first batch pays for start-up
            start = time.time()
            continue
        seen += len(y)
        if seen >= at_least:
            break
    return seen / (time.time() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work_dir", default="bench_data/train")
    parser.add_argument("--small", type=int, default=16)
    parser.add_argument("--image_size", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = (args.small, 4 * args.small)
    pool = labelled_pool(args.work_dir, args.image_size, sizes[-1], args.seed)
    rows = []
    for n in sizes:
        pattern = dataset_of(pool, n, os.path.join(args.work_dir, f"labelled-{args.image_size}-{n}"))
        out = os.path.join(args.work_dir, f"out-{args.image_size}-{n}")
        seconds, peak_mb, report = timed_train(pattern, out, args.image_size, args.epochs)
        rows.append((n, seconds, peak_mb, report, input_pipeline_rate(out, args.image_size)))
    print(f"pipelines.train --image_size {args.image_size} --epochs {args.epochs}, whole process "
          f"(Beam + tf.Transform preprocessing, training, export)")
    print(f"{'labelled':>8} {'seconds':>8} {'peak RSS MB':>12} {'input ex/s':>11} {'train ex/s':>11}")
    for n, seconds, peak_mb, report, rate in rows:
        train_rate = report.get("train_examples_per_second")
        print(f"{n:>8} {seconds:>8.1f} {peak_mb:>12.0f} {rate:>11.1f} "
              f"{'-' if train_rate is None else f'{train_rate:.1f}':>11}")
    growth = rows[-1][2] - rows[0][2]
    print(f"peak RSS growth from {sizes[0]} to {sizes[-1]} examples: {growth:+.0f} MB "
          f"({growth / (sizes[-1] - sizes[0]):+.1f} MB per example)")
    sizes_per_example = rows[-1][3]["preprocessing"]["bytes_per_example"]
    print("bytes per transformed example: " + ", ".join(
        f"{k} {v / 1e6:.2f} MB" for k, v in sizes_per_example.items() if v))


if __name__ == "__main__":
    main()
