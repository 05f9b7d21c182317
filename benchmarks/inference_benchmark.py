"""Inference throughput and peak memory at 512x512: batched vs the released way.

    python benchmarks/inference_benchmark.py --work_dir bench_data

Uses the shards made by ``combine_benchmark.py`` (generated if missing) and
the reference model (same interface and input sizes as the released one).
Each configuration runs in a fresh process so its peak RSS is its own:

* released: read with ``tf.data.TFRecordDataset``, one example at a time,
  decoded with numpy from a fully decoded protobuf, one ``session.run`` per
  example;
* batched N: ``SoilMoistureModelHandler`` (TensorFlow batch parse/decode, one
  ``session.run`` per N examples), for N = 1, 8, 32; prints the share of time
  spent parsing and decoding;
* pipeline: ``pipelines.run_inference`` end to end on the local runner, with
  1 and 2 worker processes (``--batch_size 8``).

Every configuration reads the shards itself (gunzip included).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _records(shards):
    from transforms.dataset import tfrecord_io
    for shard in shards:
        yield from tfrecord_io.read_shard(shard)


def run_released(shards, model_dir, size):
    import tensorflow as tf

    from model_runner.model import load_session
    from transforms.dataset.decode import decode_example_released

    session, feeds, output = load_session(model_dir)
    n, decode_s, start = 0, 0.0, time.time()
    for raw in tf.data.TFRecordDataset(shards, compression_type="GZIP"):  # as released
        record = raw.numpy()
        t = time.time()
        arrays = decode_example_released(record, size)
        decode_s += time.time() - t
        session.run(output, {feeds[k]: arrays[k][None] for k in feeds})
        n += 1
    return n, time.time() - start, decode_s


def run_batched(shards, model_dir, size, batch_size):
    from model_runner.model import SoilMoistureModelHandler

    model = SoilMoistureModelHandler(model_dir, image_size=size, batch_size=batch_size).load_model()
    model.decoder.decode([next(_records(shards))])  # trace the tf.function once, untimed
    n, decode_s, start, batch = 0, 0.0, time.time(), []

    def flush():
        nonlocal decode_s
        t = time.time()
        arrays = model.decoder.decode(batch)
        decode_s += time.time() - t
        model.predict_arrays(arrays)
        batch.clear()

    for record in _records(shards):
        batch.append(record)
        n += 1
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return n, time.time() - start, decode_s


def run_pipeline(pattern, model_dir, size, workers):
    from pipelines import run_inference

    with tempfile.TemporaryDirectory() as tmp:
        argv = ["--input_data_path", pattern, "--exported_model_dir", model_dir,
                "--output_path", os.path.join(tmp, "pred"), "--image_size", str(size),
                "--batch_size", "8", "--direct_num_workers", str(workers)]
        if workers > 1:
            argv += ["--direct_running_mode", "multi_processing"]
        start = time.time()
        summary = run_inference.run(argv)
        return summary["predicted"], time.time() - start, None


def child(config, shards, pattern, model_dir, size):
    kind, _, arg = config.partition(":")
    if kind == "released":
        n, seconds, decode_s = run_released(shards, model_dir, size)
    elif kind == "batched":
        n, seconds, decode_s = run_batched(shards, model_dir, size, int(arg))
    else:
        n, seconds, decode_s = run_pipeline(pattern, model_dir, size, int(arg))
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print(json.dumps({"n": n, "seconds": seconds, "decode_seconds": decode_s, "peak_mb": peak}))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work_dir", default="bench_data")
    p.add_argument("--image_size", type=int, default=512)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    shard_dir = os.path.join(args.work_dir, "shards")
    pattern = os.path.join(shard_dir, "data-*.tfrecord.gz")
    model_dir = os.path.join(args.work_dir, "reference_model")
    if args.child:
        shards = sorted(os.path.join(shard_dir, f) for f in os.listdir(shard_dir))
        return child(args.child, shards, pattern, model_dir, args.image_size)

    if not os.path.isdir(shard_dir):
        subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "combine_benchmark.py"),
                        "--work_dir", args.work_dir, "--skip_released"], check=True)
    if not os.path.isdir(model_dir):
        from model_runner.export_reference_model import export
        export(model_dir)

    configs = ["released", "batched:1", "batched:8", "batched:32", "pipeline:1", "pipeline:2"]
    results = {}
    for config in configs:
        proc = subprocess.run([sys.executable, __file__, "--work_dir", args.work_dir,
                               "--image_size", str(args.image_size), "--child", config],
                              capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            sys.exit(f"{config} failed:\n{proc.stderr[-3000:]}")
        results[config] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = results[config]
        print(f"{config}: {r['n']} examples in {r['seconds']:.1f} s", flush=True)

    base = results["released"]["n"] / results["released"]["seconds"]
    print(f"\n{'configuration':<14}{'examples/s':>12}{'x released':>12}{'parse+decode':>14}"
          f"{'peak RSS MB':>13}")
    for config, r in results.items():
        rate = r["n"] / r["seconds"]
        share = f"{r['decode_seconds'] / r['seconds']:.0%}" if r["decode_seconds"] is not None else "-"
        print(f"{config:<14}{rate:>12.2f}{rate / base:>12.2f}{share:>14}{r['peak_mb']:>13.0f}")


if __name__ == "__main__":
    main()
