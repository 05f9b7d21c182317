"""Inference speed against the released script, whole processes, two models.

    python benchmarks/inference_benchmark.py --work_dir bench_data/inference --examples 720

Data (made once, reused): ``--examples`` examples at ``--image_size`` holding
the 17 bands the released script parses (the 14 the model reads plus
Sentinel-2 B5, B6, B7) and its scalars (~10 MB serialized at 512x512), in 6
gzipped shards. Models, both with the released tensor names: *light* (the
reference model, ``model_runner.export_reference_model``: reading and decoding
dominate, as on a GPU) and *heavy* (a ResNet-like stack on the 256x256 crop,
about 6 GFLOP an example: the CPU case).

For each model, as whole processes (wall clock, CPU seconds and peak RSS
from ``wait4``), each ``--repeats`` times, the runs interleaved (released,
1 worker, 2 workers, released, ...) so a slow spell of the machine falls on
all of them; the table shows the median run and the range:

* released: ``benchmarks/released_run_inference.py``, the released script
  re-stated as it reads (tf.data GZIP reader, ``parse_single_example`` of the
  17 bands and scalars and the decode in ``num_parallel_calls=10`` maps, one
  ``session.run`` per example);
* pipeline, 1 worker: ``python -m pipelines.run_inference --direct_num_workers 1``;
* pipeline, 2 workers: ``--direct_num_workers 2 --direct_running_mode multi_processing``.

Then, in this process, the time an example spends in each stage of the
pipeline's path: reading (inflate, CRC, framing), decoding, the model.
"""

import argparse
import glob
import os
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from transforms.dataset import example_proto, model_interface, schema, tfrecord_io  # noqa: E402
from transforms.synthetic import examples as synthetic_examples  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import measure  # noqa: E402

SHARDS = 6
#: what the released script parses: the model's 14 bands and three it does not read
BANDS = (*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS, "sentinel_2_B5", "sentinel_2_B6",
         "sentinel_2_B7")


def make_data(folder: str, n: int, size: int, seed: int = 0, full: bool = False) -> str:
    """``n`` examples in ``SHARDS`` shards (one shard written, then copied);
    ``full``: every field of the dataset schema (~25 MB an example at 512x512,
    as the real data's 10-30 MB), else the 17 bands the released script parses."""
    pattern = os.path.join(folder, f"data-*-of-{SHARDS:05d}.tfrecord.gz")
    if len(glob.glob(pattern)) == SHARDS:
        return pattern
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_shard = n // SHARDS

    def example(i):
        x = synthetic_examples.draw_inputs(rng)
        if full:
            return synthetic_examples.make_example(
                rng, size, f"SCAN__Station_{i % 40}__X", np.float32(1.5e12 + 3.6e6 * i), 40.0,
                -100.0, float(rng.uniform(0, 3000)), x, (schema.SM_0_5, 0.25))
        images = synthetic_examples.make_images(rng, size, x, float(rng.uniform(0, 3000)))
        features = {name: ("int64", images[name].ravel()) for name in BANDS}
        features.update({
            schema.SENSOR_ID: ("bytes", [f"SCAN__Station_{i % 40}__X".encode()]),
            schema.TIMESTAMP: ("float", [1.5e12 + 3.6e6 * i]),
            schema.SMAP_SM: ("int64", [x.smap_sm]), schema.GLDAS_SM: ("int64", [x.gldas_sm]),
            schema.CENTER_LAT: ("float", [40.0]), schema.CENTER_LONG: ("float", [-100.0]),
            schema.SM_0_5: ("float", [0.25])})
        return example_proto.encode_example(features)

    first = os.path.join(folder, tfrecord_io.shard_name(0, SHARDS))
    tfrecord_io.write_shard(first, (example(i) for i in range(per_shard)))
    for k in range(1, SHARDS):
        shutil.copy(first, os.path.join(folder, tfrecord_io.shard_name(k, SHARDS)))
    return pattern


def export_heavy(folder: str, seed: int = 0) -> str:
    """A ResNet-like model with the released interface; about 6 GFLOP an example."""
    import tensorflow as tf

    if os.path.isdir(folder):
        return folder
    v1 = tf.compat.v1
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        image, low_res, aux = model_interface.placeholders(tf).values()

        layers = []

        def conv(x, cin, cout, stride=1):
            w = (rng.standard_normal((3, 3, cin, cout)) * np.sqrt(2 / (9 * cin)) * 0.5).astype(np.float32)
            layers.append(v1.get_variable(f"conv{len(layers)}", initializer=w))
            return tf.nn.relu(tf.nn.conv2d(x, layers[-1], stride, "SAME"))

        m = model_interface.MODEL_SIZE
        x = conv(tf.image.resize_with_crop_or_pad(image, m, m) / 255.0, 10, 32)
        for _ in range(4):  # residual blocks at full resolution
            x = x + conv(x, 32, 32) * 0.1
        x = conv(x, 32, 64, stride=2)
        hi = tf.reduce_mean(x, axis=[1, 2])
        lo = tf.reduce_mean(tf.image.resize_with_crop_or_pad(low_res, m, m) / 1000.0, axis=[1, 2])
        z = tf.concat([hi, lo, aux], axis=1)
        w = (rng.standard_normal((70, 1)) * 0.05).astype(np.float32)
        z = tf.matmul(z, v1.get_variable("dense", initializer=w))[:, 0] + 0.3
        out = tf.clip_by_value(z, 0.0, 1.0, name=model_interface.OUTPUT_OP)
        assert out.name == model_interface.OUTPUT_TENSOR, out.name
        save_model(graph, folder)
    return folder


def save_model(graph, folder: str) -> None:
    """``graph`` with its variables initialised, as a SavedModel in the
    released layout (tag ``serve``, the interface's tensor names)."""
    import tensorflow as tf

    v1 = tf.compat.v1
    with v1.Session(graph=graph) as sess:
        sess.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(folder)
        builder.add_meta_graph_and_variables(sess, [model_interface.SERVE_TAG])
        builder.save()


def heavy_gflop() -> float:
    """Multiply-adds x 2 of ``export_heavy``'s convolutions per example."""
    m = model_interface.MODEL_SIZE
    full = 2 * m * m * 9
    return (full * 10 * 32 + 4 * full * 32 * 32 + 2 * (m // 2) ** 2 * 9 * 32 * 64) / 1e9


def device() -> str:
    """What the models run on here: the GPUs TensorFlow lists, else the CPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return ", ".join(g.name for g in gpus) if gpus else "CPU (TensorFlow sees no GPU)"


def timed(argv):
    """Run a command as a whole process: (seconds, peak RSS MB, stdout, CPU seconds)."""
    return measure.measured(argv, cwd=ROOT)


def stage_times(pattern: str, model_dir: str, size: int, n: int = 24):
    """Milliseconds an example spends reading, decoding and in the model (batch 8)."""
    from model_runner.model import SoilMoistureModelHandler

    shards = sorted(glob.glob(pattern))
    start = time.time()
    records = []
    for record in tfrecord_io.read_shard(shards[0]):
        records.append(record)
        if len(records) == n:
            break
    read_ms = (time.time() - start) / len(records) * 1000
    model = SoilMoistureModelHandler(model_dir, image_size=size).load_model()
    model.decoder.decode(records[:1])
    start = time.time()
    arrays = [model.decoder.decode(records[i:i + 8]) for i in range(0, len(records), 8)]
    decode_ms = (time.time() - start) / len(records) * 1000
    model.predict_arrays(arrays[0])
    start = time.time()
    for batch in arrays:
        model.predict_arrays(batch)
    model_ms = (time.time() - start) / len(records) * 1000
    model.close()
    return read_ms, decode_ms, model_ms


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work_dir", default="bench_data/inference")
    parser.add_argument("--examples", type=int, default=720)
    parser.add_argument("--image_size", type=int, default=512)
    parser.add_argument("--models", default="light,heavy")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each configuration (the table shows the median)")
    parser.add_argument("--full_examples", action="store_true",
                        help="examples with every field of the schema (~25 MB each at 512x512) "
                             "instead of the 17 bands the released script parses")
    args = parser.parse_args(argv)
    kind = "full" if args.full_examples else "17-bands"
    pattern = make_data(os.path.join(args.work_dir, f"shards-{kind}-{args.image_size}"),
                        args.examples, args.image_size, full=args.full_examples)
    n = SHARDS * (args.examples // SHARDS)
    models = {}
    if "light" in args.models:
        light = os.path.join(args.work_dir, "light_model")
        if not os.path.isdir(light):
            from model_runner.export_reference_model import export
            export(light)
        models["light"] = light
    if "heavy" in args.models:
        models["heavy"] = export_heavy(os.path.join(args.work_dir, "heavy_model"))
    print(f"{n} examples at {args.image_size}x{args.image_size}, "
          f"{os.path.getsize(sorted(glob.glob(pattern))[0]) / 1e6:.0f} MB a shard; "
          f"heavy model {heavy_gflop():.1f} GFLOP an example; {os.cpu_count()} cores; "
          f"device: {device()}", flush=True)
    for name, model_dir in models.items():
        released = [sys.executable, os.path.join(ROOT, "benchmarks", "released_run_inference.py"),
                    "--input_data_path", pattern, "--exported_model_dir", model_dir,
                    "--num_inference_samples", str(n), "--image_size", str(args.image_size)]
        runs = {"released": released}
        for workers in (1, 2):
            runs[f"pipeline, {workers} worker{'s' if workers > 1 else ''}"] = [
                sys.executable, "-m", "pipelines.run_inference", "--input_data_path", pattern,
                "--exported_model_dir", model_dir, "--image_size", str(args.image_size),
                "--direct_num_workers", str(workers), "--progress_seconds", "0",
                *(["--direct_running_mode", "multi_processing"] if workers > 1 else [])]
        figures = {label: [] for label in runs}
        for _ in range(args.repeats):
            for label, argv in runs.items():
                with tempfile.TemporaryDirectory() as tmp:
                    out_argv = argv if label == "released" else argv + [
                        "--output_path", os.path.join(tmp, "pred")]
                    seconds, peak, out, cpu = timed(out_argv)
                if label == "released":
                    assert out.count("Prediction ") == n, out[-500:]
                figures[label].append((seconds, cpu, peak))
        median = {label: sorted(f)[len(f) // 2] for label, f in figures.items()}
        base = n / median["released"][0]
        print(f"\n{name} model (median of {args.repeats} runs; range of seconds)")
        print(f"{'run':<22}{'examples/s':>11}{'x released':>12}{'seconds':>9}{'range':>13}"
              f"{'CPU s':>7}{'peak RSS MB':>13}")
        for label, (seconds, cpu, peak) in median.items():
            times = [f[0] for f in figures[label]]
            print(f"{label:<22}{n / seconds:>11.1f}{n / seconds / base:>12.2f}{seconds:>9.1f}"
                  f"{f'{min(times):.1f}-{max(times):.1f}':>13}{cpu:>7.0f}"
                  f"{max(f[2] for f in figures[label]):>13.0f}")
        # start-up: a whole process that predicts one example (sample mode)
        first_released, _, _, _ = timed(released[:-4] + ["--num_inference_samples", "1",
                                                       "--image_size", str(args.image_size)])
        first_ours, _, _, _ = timed([sys.executable, "-m", "pipelines.run_inference",
                                  "--input_data_path", pattern, "--exported_model_dir", model_dir,
                                  "--num_inference_samples", "1", "--image_size",
                                  str(args.image_size)])
        print(f"first prediction (a whole process predicting one example): released "
              f"{first_released:.1f} s, pipeline {first_ours:.1f} s "
              f"({first_ours / first_released:.2f}x)")
        read_ms, decode_ms, model_ms = stage_times(pattern, model_dir, args.image_size)
        total = read_ms + decode_ms + model_ms
        print(f"one example on one core: read {read_ms:.1f} ms ({read_ms / total:.0%}), "
              f"decode {decode_ms:.1f} ms ({decode_ms / total:.0%}), "
              f"model {model_ms:.1f} ms ({model_ms / total:.0%})", flush=True)


if __name__ == "__main__":
    main()
