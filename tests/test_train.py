"""train: tf.Transform statistics, learning, export in the released interface, ablations."""

import glob
import json
import os

import numpy as np
import pytest

from model_runner.model import load_session
from pipelines import combine_ismn_data, train
from transforms import evaluation, synthetic, training
from transforms.dataset import tfrecord_io

SIZE = 16


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    paths = synthetic.generate(synthetic.SampleConfig(
        output_dir=str(root / "sample"), num_shards=2, examples_per_shard=100, image_size=SIZE,
        ismn_days=120, seed=5), log=lambda *_: None)
    out = str(root / "merged")
    combine_ismn_data.run(["--input_data_path", paths.shards_glob,
                           "--ismn_data_path", paths.ismn_path, "--output_dir", out])
    return os.path.join(out, "data-*.tfrecord.gz")


def _decoded_by_split(pattern):
    by_split = {s: [] for s in evaluation.SPLITS}
    for shard in sorted(glob.glob(pattern)):
        records = list(tfrecord_io.read_shard(shard))
        for record in records:
            from transforms.dataset import example_proto
            sid = example_proto.read_features(record, ["sensor_id"])["sensor_id"][0].decode()
            for ex in training.decoded_examples([record], SIZE):
                by_split[evaluation.sensor_split(sid)].append(ex)
    return by_split


@pytest.fixture(scope="module")
def trained(merged, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("full"))
    report = train.run(["--input_data_path", merged, "--output_dir", out, "--image_size",
                        str(SIZE), "--epochs", "40"])
    return out, report


def test_statistics_equal_numpy_over_the_train_split_only(merged, trained):
    out, _ = trained
    stats = training.transformed_statistics(out)
    by_split = _decoded_by_split(merged)
    for key in ("image", "low_res", "aux"):
        train_x = np.stack([e[key] for e in by_split["train"]]).astype(np.float64)
        axes = tuple(range(train_x.ndim - 1))
        np.testing.assert_allclose(stats[f"{key}_mean"], train_x.mean(axis=axes), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(stats[f"{key}_var"], train_x.var(axis=axes), rtol=1e-3, atol=1e-4)
        everything = np.stack([e[key] for s in by_split.values() for e in s]).astype(np.float64)
        assert not np.allclose(stats[f"{key}_mean"], everything.mean(axis=axes), rtol=1e-4, atol=1e-6)


def test_training_learns_and_beats_the_baselines(merged, trained):
    _, report = trained
    assert report["examples"]["validation"] > 5
    assert report["rmse"]["validation"] < report["rmse_train_mean"]["validation"]
    assert report["loss"][-1] < report["loss"][0]
    validation = _decoded_by_split(merged)["validation"]
    y = np.array([e["label"] for e in validation])
    for channel in (0, 1):  # SMAP, GLDAS as predictors: aux = value / 255
        baseline = np.array([e["aux"][channel] for e in validation])
        assert report["rmse"]["validation"] < np.sqrt(np.mean((baseline - y) ** 2))


def _split_batches(out, split, batch_size=64):
    from transforms.training import data, preprocess

    stats = training.transformed_statistics(out)
    return data.dataset(data.transformed_files(out, split), data.window_side(SIZE),
                        preprocess.normalisation_from(stats),
                        batch_size)


def _exported_predict(model_path, examples):
    session, feeds, output = load_session(model_path)
    batch = {k: np.stack([e[k] for e in examples]) for k in ("image", "low_res", "aux")}
    out = session.run(output, {feeds[k]: batch[k] for k in feeds})
    session.close()
    return np.asarray(out).ravel()


def test_exported_model_equals_keras_model(merged, trained, tmp_path):
    import shutil

    out = str(tmp_path / "copy")  # its own copy: the shared fixture's model stays as trained
    shutil.copytree(trained[0], out)
    report, model = training.train_and_export(
        out, SIZE, training.FitConfig(training.SOURCES, epochs=2, train_batch_size=16, seed=1))
    keras_pred = np.concatenate([model(x).numpy() for x, _ in _split_batches(out, "validation")])
    validation = _decoded_by_split(merged)["validation"]
    for path in (report["model_dir"], os.path.join(report["model_dir"], "frozen_graph.pb")):
        np.testing.assert_allclose(_exported_predict(path, validation), keras_pred, atol=1e-5)
    assert len(set(np.round(keras_pred, 4))) > 3


def test_exported_model_runs_in_run_inference(merged, trained, tmp_path):
    from pipelines import run_inference

    out, report = trained
    # the model records the size it was trained on: run_inference needs no --image_size
    with open(os.path.join(report["model_dir"], "model_info.json")) as f:
        assert json.load(f)["image_size"] == SIZE
    summary = run_inference.run(["--input_data_path", merged, "--exported_model_dir",
                                 report["model_dir"], "--output_path", str(tmp_path / "p")])
    assert summary["predicted"] > 100 and summary["accounted"]
    # the predictions are the trained model's, example by example
    import csv

    rows = [r for path in sorted(glob.glob(str(tmp_path / "p-*.csv")))
            for r in csv.DictReader(open(path))][:24]
    records = {(os.path.basename(shard), i): rec for shard in sorted(glob.glob(merged))
               for i, rec in enumerate(tfrecord_io.read_shard(shard))}
    examples = [training.decoded_examples([records[(r["shard"], int(r["index"]))]], SIZE)[0]
                for r in rows]
    np.testing.assert_allclose([float(r["prediction"]) for r in rows],
                               _exported_predict(report["model_dir"], examples), atol=1e-5)


@pytest.mark.parametrize("inputs,unused", [
    ("s1,dem,s2", [("aux", 0), ("aux", 1), ("low_res", 2)]),
    ("smap,gldas,soilgrids", [("image", 0), ("image", 9)]),
])
def test_ablation_ignores_unused_inputs(merged, tmp_path, inputs, unused):
    report = train.run(["--input_data_path", merged, "--output_dir", str(tmp_path),
                        "--image_size", str(SIZE), "--epochs", "2", "--inputs", inputs])
    examples = _decoded_by_split(merged)["validation"][:8]
    base = _exported_predict(report["model_dir"], examples)
    for key, channel in unused:
        changed = [dict(e, **{key: _zero(e[key], channel)}) for e in examples]
        np.testing.assert_array_equal(_exported_predict(report["model_dir"], changed), base)


def _zero(x, channel):
    x = x.copy()
    x[..., channel] = 0
    return x


def test_smap_gldas_nn_baseline(merged, tmp_path):
    report = train.run(["--input_data_path", merged, "--output_dir", str(tmp_path),
                        "--image_size", str(SIZE), "--epochs", "30", "--baseline", "smap_gldas_nn"])
    assert report["inputs"] == ["smap", "gldas"]
    assert report["rmse"]["validation"] < report["rmse_train_mean"]["validation"]
    examples = _decoded_by_split(merged)["validation"][:8]
    base = _exported_predict(report["model_dir"], examples)
    blank = [dict(e, image=np.zeros_like(e["image"]), low_res=np.zeros_like(e["low_res"]))
             for e in examples]
    np.testing.assert_array_equal(_exported_predict(report["model_dir"], blank), base)


def test_unknown_input_name_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown input 'radar'"):
        train.run(["--input_data_path", "x", "--output_dir", str(tmp_path), "--inputs", "s1,radar"])
