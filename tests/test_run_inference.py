"""model_runner and run_inference: handler, parity with batch-of-one, errors, outputs."""

import csv
import glob
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from apache_beam.testing.test_pipeline import TestPipeline

import support
from model_runner import export_reference_model
from model_runner.model import (LoadedModel, ModelLoadError,
                                SoilMoistureModelHandler, TensorNames, load_session)
from pipelines import run_inference
from transforms.dataset import decode, example_proto, tfrecord_io
from transforms import runtime
from transforms.inference import config as inference_config, job as inference_job

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_pipeline(argv):
    return run_inference.run(argv, test_pipeline=TestPipeline(runner=runtime.LOCAL_RUNNER))


def _rows(prefix):
    rows = []
    for path in sorted(glob.glob(f"{prefix}-*-of-*.csv")):
        with open(path) as f:
            rows += list(csv.DictReader(f))
    return rows


def _released_batch_of_one(model_path, records, size):
    """The released way: decode one example in numpy, one session.run per example."""
    session, feeds, output = load_session(model_path)
    out = []
    for record in records:
        arrays = decode.decode_example_released(record, size)
        value = session.run(output, {feeds[k]: arrays[k][None] for k in feeds})
        out.append(float(np.asarray(value).ravel()[0]))
    session.close()
    return out


# ---------------------------------------------------------------- handler

class FakeModel(LoadedModel):
    """Predicts smap_sm/255 + 0.001 * batch size, and records batch sizes."""

    def __init__(self, size, log_path):
        super().__init__(None, {}, None, decode.BatchDecoder(size))
        self.log_path = log_path

    def predict_arrays(self, arrays):
        n = len(arrays["aux"])
        with open(self.log_path, "a") as f:
            f.write(f"batch {n}\n")
        return arrays["aux"][:, 0] + 0.001 * n


class FakeHandler(SoilMoistureModelHandler):
    def __init__(self, log_path, **kwargs):
        super().__init__("unused", **kwargs)
        self.log_path = log_path

    def load_model(self):
        with open(self.log_path, "a") as f:
            f.write("load\n")
        return FakeModel(self.image_size, self.log_path)


def test_handler_pickles_without_a_session(tmp_path):
    handler = SoilMoistureModelHandler("/some/model", image_size=64, batch_size=4)
    blob = pickle.dumps(handler)
    assert len(blob) < 2000
    copy = pickle.loads(blob)
    assert (copy.model_path, copy.image_size, copy.batch_size) == ("/some/model", 64, 4)
    assert copy.batch_elements_kwargs() == {"min_batch_size": 1, "max_batch_size": 4}
    assert SoilMoistureModelHandler("/m", metrics_namespace="run_inference").get_metrics_namespace() == "run_inference"


def test_fake_model_batches_and_is_loaded_once(sample_ceop_zip, tmp_path, monkeypatch):
    log = str(tmp_path / "log.txt")
    handler = FakeHandler(log, image_size=16, batch_size=5)
    monkeypatch.setattr(inference_config.InferenceConfig, "handler", lambda self: handler)
    monkeypatch.setattr(inference_job, "check_model_flags", lambda config: None)  # no model files
    out = str(tmp_path / "pred")
    summary = _run_pipeline(["--input_data_path", sample_ceop_zip.shards_glob,
                             "--exported_model_dir", "unused", "--output_path", out,
                             "--image_size", "16"])
    lines = open(log).read().split()
    assert lines.count("load") == 1  # one model per process, shared by bundles and threads
    sizes = [int(x) for x in open(log).read().split("batch")[1:]]
    assert max(sizes) <= 5 and sum(sizes) == summary["predicted"] == 36
    rows = _rows(out)
    assert len(rows) == 36
    for r in rows:  # each prediction came from its own example's inputs
        smap = int(r["smap_sm"])
        assert float(r["prediction"]) == pytest.approx(smap / 255, abs=0.0051)


# ---------------------------------------------------------------- parity

@pytest.mark.parametrize("frozen", [False, True])
def test_pipeline_equals_batch_of_one_released_decode(sample_512, reference_model, tmp_path, frozen):
    model = os.path.join(reference_model, export_reference_model.FROZEN_NAME) if frozen else reference_model
    out = str(tmp_path / "pred")
    summary = _run_pipeline(["--input_data_path", sample_512.shards_glob, "--exported_model_dir",
                             model, "--output_path", out, "--batch_size", "4"])
    assert summary["predicted"] == 6 and summary["accounted"]
    records = {(os.path.basename(s), i): r for s in sample_512.shards
               for i, r in enumerate(tfrecord_io.read_shard(s))}
    rows = _rows(out)
    keys = [(r["shard"], int(r["index"])) for r in rows]
    expected = _released_batch_of_one(model, [records[k] for k in keys], 512)
    got = [float(r["prediction"]) for r in rows]
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert len(set(np.round(got, 4))) > 3  # not a constant model


def test_sample_mode_prints_the_first_rows(sample_512, reference_model, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.run_inference", "--input_data_path",
         sample_512.shards_glob, "--exported_model_dir", reference_model,
         "--num_inference_samples", "4", "--num_skip_samples", "1", "--batch_size", "3"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = [line for line in proc.stdout.splitlines() if line.startswith("Prediction ")]
    assert [p.split(":")[0] for p in printed] == [f"Prediction {i}" for i in range(4)]
    values = [float(p.split(": ")[1]) for p in printed]
    records = [r for s in sample_512.shards for r in tfrecord_io.read_shard(s)][1:5]
    expected = _released_batch_of_one(reference_model, records, 512)
    np.testing.assert_allclose(values, expected, atol=1e-5, rtol=0)


def test_model_depends_on_every_band_and_order(sample_512, reference_model):
    handler = SoilMoistureModelHandler(reference_model, image_size=512)
    model = handler.load_model()
    records = list(tfrecord_io.read_shard(sample_512.shards[0]))
    arrays = model.decoder.decode(records)
    base = model.predict_arrays(arrays)
    for key, bands in (("image", 10), ("low_res", 4), ("aux", 2)):
        for b in range(bands):
            changed = dict(arrays)
            x = arrays[key].copy()
            x[..., b] = 0
            changed[key] = x
            assert np.abs(model.predict_arrays(changed) - base).max() > 1e-3, (key, b)
    swapped = dict(arrays)
    swapped["image"] = arrays["image"][..., ::-1].copy()
    assert np.abs(model.predict_arrays(swapped) - base).max() > 1e-3
    assert ((base >= 0) & (base <= 1)).all()


# ---------------------------------------------------------------- errors

def test_missing_model_dir(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_session(str(tmp_path / "nope"))


def test_no_serve_tag(tmp_path):
    d = str(tmp_path / "m")
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.placeholder(tf.float32, [None], name="x")
        with tf.compat.v1.Session(graph=graph) as sess:
            b = tf.compat.v1.saved_model.Builder(d)
            b.add_meta_graph_and_variables(sess, ["train"])
            b.save()
    with pytest.raises(ModelLoadError, match=r"no MetaGraph tagged 'serve' \(tags present: \[\['train'\]\]\)"):
        load_session(d)


def test_unknown_tensor_lists_placeholders(reference_model):
    with pytest.raises(ModelLoadError) as e:
        load_session(reference_model, TensorNames(image="Image:0"))
    msg = str(e.value)
    assert "'Image:0'" in msg and "ImageTensor:0" in msg and "AuxTensor:0" in msg


def test_bad_examples_are_failures_and_the_rest_predicted(sample_ceop_zip, reference_model, tmp_path):
    shard = tmp_path / "in" / "data-00000-of-00001.tfrecord.gz"
    os.makedirs(shard.parent)
    good = list(tfrecord_io.read_shard(sample_ceop_zip.shards[0]))[:3]
    missing_band = example_proto.encode_example({"sensor_id": ("bytes", [b"A__B__C"]),
                                                 "timestamp": ("float", [1.5e12])})
    tfrecord_io.write_shard(str(shard), [good[0], missing_band, good[1], b"\x0a\xff", good[2]])
    out = str(tmp_path / "pred")
    summary = _run_pipeline(["--input_data_path", str(shard), "--exported_model_dir",
                             reference_model, "--output_path", out, "--image_size", "16",
                             "--batch_size", "8"])
    assert summary["predicted"] == 3 and summary["failed"] == 2 and summary["accounted"]
    fails = {f["index"]: f for f in map(json.loads, open(f"{out}-failures.jsonl"))}
    assert fails[1]["kind"] == "decode" and "is required but could not be found" in fails[1]["reason"]
    assert fails[1]["shard"] == shard.name and fails[1]["sensor_id"] == "A__B__C"
    assert fails[3]["kind"] == "malformed"
    assert sorted(int(r["index"]) for r in _rows(out)) == [0, 2, 4]


# ---------------------------------------------------------------- outputs

def test_output_formats_agree(sample_ceop_zip, reference_model, tmp_path):
    import pyarrow.parquet as pq

    base = ["--input_data_path", sample_ceop_zip.shards_glob, "--exported_model_dir",
            reference_model, "--image_size", "16"]
    _run_pipeline(base + ["--output_path", str(tmp_path / "c")])
    _run_pipeline(base + ["--output_path", str(tmp_path / "p"), "--output_format", "parquet"])
    _run_pipeline(base + ["--output_path", str(tmp_path / "t"), "--output_format", "tfrecord"])
    from_csv = {(r["shard"], int(r["index"])): (r["sensor_id"], float(r["prediction"]),
                                                r["label"] or None) for r in _rows(str(tmp_path / "c"))}
    table = pq.read_table(sorted(glob.glob(str(tmp_path / "p-*.parquet")))).to_pylist()
    from_parquet = {(r["shard"], r["index"]): (r["sensor_id"], r["prediction"]) for r in table}
    spec = {"shard": tf.io.FixedLenFeature([], tf.string), "index": tf.io.FixedLenFeature([], tf.int64),
            "prediction": tf.io.FixedLenFeature([], tf.float32)}
    from_tfrecord = {}
    for path in glob.glob(str(tmp_path / "t-*.tfrecord.gz")):
        for rec in tf.data.TFRecordDataset(path, compression_type="GZIP"):
            ex = tf.io.parse_single_example(rec, spec)
            from_tfrecord[(ex["shard"].numpy().decode(), int(ex["index"]))] = float(ex["prediction"])
    assert len(from_csv) == 36 and from_csv.keys() == from_parquet.keys() == from_tfrecord.keys()
    # three runs: shards are read two at a time, so batches (and the model's
    # float32 rounding, ~1e-7) may differ from run to run
    for k, (sid, pred, label) in from_csv.items():
        assert from_parquet[k] == (sid, pytest.approx(pred, abs=1e-6))
        assert from_tfrecord[k] == pytest.approx(pred, abs=1e-6)
    # labels: present exactly for the labelled examples
    truth = {(r["shard"], r["index"]): r for r in map(json.loads, open(sample_ceop_zip.ground_truth))}
    for k, (_, _, label) in from_csv.items():
        assert (label is not None) == (truth[k]["outcome"] == "prelabelled")


def _export_whole_image_model(folder):
    """A model with the released names whose output depends on every pixel
    (the mean of the whole image): feeding its window alone would be wrong."""
    from transforms.dataset import model_interface

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        image, low_res, aux = model_interface.placeholders(tf).values()
        z = (tf.reduce_mean(image, axis=[1, 2, 3]) / 255.0 + tf.reduce_mean(low_res, axis=[1, 2, 3])
             / 1000.0 + tf.reduce_mean(aux, axis=1)) / 3.0
        tf.clip_by_value(z, 0.0, 1.0, name=model_interface.OUTPUT_OP)
        with v1.Session(graph=graph) as sess:
            builder = v1.saved_model.Builder(str(folder))
            builder.add_meta_graph_and_variables(sess, [model_interface.SERVE_TAG])
            builder.save()
    return str(folder)


def test_only_a_model_that_crops_is_fed_the_window(sample_512, reference_model, tmp_path):
    from model_runner.model import predict_serialized, sees_only_window

    records = list(tfrecord_io.read_shard(sample_512.shards[0]))
    cropping = SoilMoistureModelHandler(reference_model, image_size=512).load_model()
    assert sees_only_window(cropping.session, cropping.feeds, cropping.output, 512)
    assert (cropping.decoder.offset, cropping.decoder.side) == (128, 256)
    whole_model = _export_whole_image_model(tmp_path / "whole")
    whole = SoilMoistureModelHandler(whole_model, image_size=512).load_model()
    assert not sees_only_window(whole.session, whole.feeds, whole.output, 512)
    assert (whole.decoder.offset, whole.decoder.side) == (0, 512)
    np.testing.assert_allclose(predict_serialized(whole, records),
                               _released_batch_of_one(whole_model, records, 512), atol=1e-5, rtol=0)
    # a whole-image model at a size the model sees entirely: nothing to cut
    assert not sees_only_window(cropping.session, cropping.feeds, cropping.output, 256)
    forced = SoilMoistureModelHandler(reference_model, image_size=512, feed_window=False).load_model()
    assert forced.decoder.side == 512
    np.testing.assert_allclose(predict_serialized(forced, records),
                               predict_serialized(cropping, records), atol=1e-6, rtol=0)


def test_batch_size_in_bytes_is_the_serialized_size():
    handler = SoilMoistureModelHandler("/some/model")
    assert handler.get_num_bytes([b"abc", b"de"]) == 5


def test_default_batch_grows_on_a_gpu_and_the_flag_overrides(monkeypatch):
    from apache_beam.options.pipeline_options import PipelineOptions

    from model_runner import settings

    def resolved(argv):
        return settings.ModelSettings.settled_defaults(PipelineOptions(argv))["batch_size"]

    monkeypatch.setattr(settings, "local_gpus", lambda: 0)
    assert resolved([]) == 8
    monkeypatch.setattr(settings, "local_gpus", lambda: 1)
    assert resolved([]) == 64 and resolved(["--batch_size", "3"]) == 3
    dataflow = ["--runner", "DataflowRunner"]
    assert resolved(dataflow) == 8
    assert resolved(dataflow + ["--dataflow_service_options",
                                "worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver"]) == 64
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    from model_runner.model import local_gpus
    assert local_gpus() == 0


def test_inference_imports_tensorflow_without_keras_and_keras_still_loads(reference_model):
    """A fresh process that loads a model the way a worker does has not
    imported Keras (TensorFlow's ``__init__`` would, 2 s of start-up), nor
    left the blocker behind: ``tf.keras`` and ``import keras`` load it later."""
    probe = ("import sys\n"
             "from model_runner.model import SoilMoistureModelHandler\n"
             f"model = SoilMoistureModelHandler({reference_model!r}, image_size=64).load_model()\n"
             "before = sorted(m for m in sys.modules if m == 'keras' or m.startswith('keras.'))\n"
             "import tensorflow as tf\n"
             "layer = tf.keras.layers.Dense(2)\n"
             "import keras\n"
             "print(len(before), keras.optimizers.Adam.__name__, type(layer).__name__)\n")
    words, err = support.fresh_python(probe)
    assert words == ["0", "Adam", "Dense"], err
