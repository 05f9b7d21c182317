"""Throughput of the ISMN merge against the I/O floor and the released algorithm.

    python benchmarks/combine_benchmark.py --work_dir bench_data \
        --num_shards 4 --examples_per_shard 12 --image_size 512 --ismn_days 730

Generates (once, reused while the configuration is unchanged) shards with
512x512 images and a multi-year hourly ISMN archive, then times, on the same
shards:

* floor: decompress every shard and recompress it at the same gzip level in
  one process, no parsing at all, with the standard zlib and with zlib-ng
  (what the pipeline uses); and the zlib-ng floor counting only the share of
  bytes the merge writes (it leaves failed examples out), which is what any
  merge must at least pay (the "x floor" column divides by it);
* pipeline, 1 worker: ``pipelines.combine_ismn_data`` with
  ``--direct_num_workers 1`` (wall clock including Beam start-up);
* pipeline, 2 workers: ``--direct_num_workers 2 --direct_running_mode multi_processing``;
* released: the per-example re-statement of the released script
  (``tests/released_reference.py``): full decode, station file re-read per
  example, re-encode.

Prints examples/s and uncompressed MB/s for each, and the ratios.
"""

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines import combine_ismn_data  # noqa: E402
from zlib_ng import gzip_ng  # noqa: E402

from transforms import synthetic  # noqa: E402

from transforms.dataset import tfrecord_io  # noqa: E402


def ensure_sample(args) -> synthetic.SamplePaths:
    cfg = synthetic.SampleConfig(
        output_dir=args.work_dir, num_shards=args.num_shards,
        examples_per_shard=args.examples_per_shard, image_size=args.image_size,
        seed=args.seed, ismn_days=args.ismn_days, ismn_format="ceop", ismn_layout="zip")
    manifest = os.path.join(args.work_dir, "manifest.json")
    if os.path.exists(manifest):
        with open(manifest) as f:
            if json.load(f)["config"] == json.loads(json.dumps(cfg.__dict__)):
                print(f"reusing the sample in {args.work_dir}")
                shards = sorted(os.path.join(args.work_dir, "shards", n)
                                for n in os.listdir(os.path.join(args.work_dir, "shards")))
                return synthetic.SamplePaths(
                    os.path.join(args.work_dir, "shards", "*.tfrecord.gz"), shards,
                    os.path.join(args.work_dir, "ismn", "ISMN_sample.zip"),
                    os.path.join(args.work_dir, "ground_truth.jsonl"), manifest)
    start = time.time()
    paths = synthetic.generate(cfg)
    print(f"generated in {time.time() - start:.0f} s")
    return paths


def floor(shards, out_dir, module=gzip):
    """Seconds to gunzip every shard, and to gzip it again (level 6), in one process,
    with ``module`` (the standard ``gzip`` or ``zlib_ng.gzip_ng``)."""
    unzip = rezip = 0.0
    for shard in shards:
        start = time.time()
        with module.open(shard, "rb") as src:
            data = src.read()
        mid = time.time()
        with module.GzipFile(os.path.join(out_dir, os.path.basename(shard)), "wb",
                             compresslevel=tfrecord_io.GZIP_LEVEL, mtime=0) as dst:
            dst.write(data)
        unzip, rezip = unzip + mid - start, rezip + time.time() - mid
        del data
    return unzip, rezip


def uncompressed_size(paths) -> int:
    total = 0
    for path in paths:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(16 << 20):
                total += len(chunk)
    return total


def pipeline(paths, out_dir, workers) -> float:
    argv = ["--input_data_path", paths.shards_glob, "--ismn_data_path", paths.ismn_path,
            "--output_dir", out_dir, "--direct_num_workers", str(workers)]
    if workers > 1:
        argv += ["--direct_running_mode", "multi_processing"]
    start = time.time()
    summary = combine_ismn_data.run(argv)
    assert summary["accounted"], summary
    return time.time() - start


def released(paths, out_dir) -> float:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "tests"))  # the oracle lives with the tests
    from released_reference import released_merge

    ismn_copy = os.path.join(out_dir, "ISMN_sample.zip")  # it writes metadata beside it
    shutil.copy(paths.ismn_path, ismn_copy)
    start = time.time()
    released_merge(paths.shards, ismn_copy, os.path.join(out_dir, "out"))
    return time.time() - start


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work_dir", default="bench_data")
    p.add_argument("--num_shards", type=int, default=4)
    p.add_argument("--examples_per_shard", type=int, default=12)
    p.add_argument("--image_size", type=int, default=512)
    p.add_argument("--ismn_days", type=int, default=730)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip_released", action="store_true")
    args = p.parse_args(argv)

    paths = ensure_sample(args)
    with open(paths.manifest) as f:
        manifest = json.load(f)
    n, raw_mb = manifest["examples"], manifest["uncompressed_bytes"] / 1e6
    gz_mb = manifest["compressed_bytes"] / 1e6
    print(f"{n} examples, {raw_mb:.0f} MB uncompressed, {gz_mb:.0f} MB gzipped "
          f"(ratio {manifest['compression_ratio']}), {os.cpu_count()} cores")

    runs = {}
    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        def fresh(name):
            d = os.path.join(tmp, name)
            os.makedirs(d)
            return d

        unzip, rezip = floor(paths.shards, fresh("floor"))
        runs["floor, stdlib zlib"] = unzip + rezip
        ng_unzip, ng_rezip = floor(paths.shards, fresh("floor_ng"), gzip_ng)
        runs["floor, zlib-ng"] = ng_unzip + ng_rezip
        out1 = fresh("p1")
        runs["pipeline, 1 worker"] = pipeline(paths, out1, 1)
        written = [os.path.join(out1, os.path.basename(s)) for s in paths.shards]
        fraction = uncompressed_size(written) / manifest["uncompressed_bytes"]
        runs["floor, zlib-ng, written"] = ng_unzip + ng_rezip * fraction
        runs["pipeline, 2 workers"] = pipeline(paths, fresh("p2"), 2)
        if not args.skip_released:
            runs["released algorithm"] = released(paths, fresh("released"))

    base = runs["floor, zlib-ng, written"]
    print(f"\nstdlib zlib: gunzip {raw_mb / unzip:.0f} MB/s, gzip -6 {raw_mb / rezip:.0f} MB/s; "
          f"zlib-ng: gunzip {raw_mb / ng_unzip:.0f} MB/s, gzip -6 {raw_mb / ng_rezip:.0f} MB/s; "
          f"the merge writes {fraction:.0%} of the input bytes")
    print(f"\n{'run':<26}{'seconds':>9}{'examples/s':>12}{'MB/s':>8}{'x floor':>9}")
    for name, seconds in runs.items():
        print(f"{name:<26}{seconds:>9.1f}{n / seconds:>12.2f}{raw_mb / seconds:>8.1f}"
              f"{seconds / base:>9.2f}")
    if "released algorithm" in runs:
        print(f"\npipeline (1 worker) is {runs['released algorithm'] / runs['pipeline, 1 worker']:.1f}x "
              "faster than the released algorithm")


if __name__ == "__main__":
    main()
