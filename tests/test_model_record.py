"""The image size a model records, and predictions that mean nothing.

A model ``train`` exported records the image size it was trained on
(``model_info.json``); ``run_inference`` and ``predict_map`` feed it that
size by default and refuse another (a 32x32 model fed 256x256 windows maps
1.0 everywhere). Independently, a run whose predictions sit on the model's
clip bounds says so, and fails when all do; a window the model answers with
NaN is a NaN pixel with a cause of its own, never "predicted".
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from model_runner.model import ModelLoadError
from model_runner.record import recorded_image_size
from model_runner.settings import settle_image_size
from transforms import runtime
from transforms.synthetic.scene import SceneConfig, make_scene

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_module(module, argv, timeout=600):
    proc = subprocess.run([sys.executable, "-m", f"pipelines.{module}", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def errors(stderr):
    return [line for line in stderr.splitlines() if "error" in line.lower()
            or "WARNING" in line]


def export_model(folder, output, image_size=None):
    """A SavedModel with the released interface whose output is
    ``output(image, low_res, aux)`` (a [batch] tensor), named as the
    released output; ``model_info.json`` with ``image_size`` when given."""
    import tensorflow as tf

    from transforms.dataset import model_interface

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        feeds = model_interface.placeholders(tf)
        tf.identity(output(feeds["image"], feeds["low_res"], feeds["aux"]),
                    name=model_interface.OUTPUT_OP)
        with v1.Session(graph=graph) as sess:
            builder = v1.saved_model.Builder(str(folder))
            builder.add_meta_graph_and_variables(sess, [model_interface.SERVE_TAG])
            builder.save()
    if image_size is not None:
        with open(os.path.join(folder, model_interface.MODEL_INFO_NAME), "w") as f:
            json.dump({"image_size": image_size}, f)
    return str(folder)


# --- the rule: flag, else the model's record, else 512; a conflict is refused

def test_the_image_size_is_the_flag_else_the_record_else_512():
    assert settle_image_size(None, 32, "m") == 32
    assert settle_image_size(32, 32, "m") == 32
    assert settle_image_size(None, None, "m") == 512
    assert settle_image_size(16, None, "m") == 16  # the released model takes any size
    with pytest.raises(runtime.UsageError, match=r"--image_size 256: the model m was trained "
                                                 r"on 32x32 images"):
        settle_image_size(256, 32, "m")


def test_the_record_is_read_beside_a_savedmodel_or_a_frozen_graph(tmp_path):
    (tmp_path / "model_info.json").write_text('{"image_size": 32, "window": 32}')
    (tmp_path / "frozen_graph.pb").write_bytes(b"")
    assert recorded_image_size(str(tmp_path)) == 32
    assert recorded_image_size(str(tmp_path / "frozen_graph.pb")) == 32
    (tmp_path / "released").mkdir()  # the released model: no record
    assert recorded_image_size(str(tmp_path / "released")) is None
    (tmp_path / "model_info.json").write_text('{"image_size": "big"}')
    with pytest.raises(ModelLoadError, match="model_info.json"):
        recorded_image_size(str(tmp_path))
    (tmp_path / "model_info.json").write_text('not json')
    with pytest.raises(ModelLoadError, match="model_info.json"):
        recorded_image_size(str(tmp_path))


def test_saturation_is_said_when_most_predictions_sit_on_a_clip_bound():
    from transforms.dataset.model_interface import all_saturated, saturated, saturation_line

    values = np.array([0.0, 1.0, 0.5, np.nan, 1.0, 0.999999], np.float32)
    assert saturated(values).tolist() == [True, True, False, False, True, False]
    assert saturation_line("c", 2, 4, "examples") == ""  # half: not most
    assert saturation_line("c", 3, 4, "examples").startswith(
        "c: WARNING: 3 of 4 examples predicted sit exactly on the model's clip bounds (0 or 1)")
    assert saturation_line("c", 4, 4, "map pixels").startswith(
        "c: error: all map pixels predicted sit exactly")
    assert saturation_line("c", 0, 0, "examples") == "" and not all_saturated(0, 0)
    assert all_saturated(4, 4) and not all_saturated(3, 4)


# --- run_inference: the record is the default; a conflict is one line, exit 2

@pytest.fixture(scope="module")
def recorded_16(tmp_path_factory, reference_model):
    """The reference model with a record of 16x16 training images."""
    folder = tmp_path_factory.mktemp("recorded") / "model"
    shutil.copytree(reference_model, folder)
    (folder / "model_info.json").write_text('{"image_size": 16}')
    return str(folder)


def test_run_inference_feeds_the_recorded_size_without_the_flag(sample_ceop_zip, recorded_16,
                                                                reference_model):
    shards = sample_ceop_zip.shards_glob
    rc, out, err = run_module("run_inference", [
        "--input_data_path", shards, "--exported_model_dir", recorded_16,
        "--num_inference_samples", "3"])
    assert rc == 0, err
    rc, with_flag, err = run_module("run_inference", [
        "--input_data_path", shards, "--exported_model_dir", reference_model,
        "--image_size", "16", "--num_inference_samples", "3"])
    assert rc == 0, err
    assert out.count("Prediction ") == 3 and out == with_flag


def test_run_inference_refuses_an_image_size_the_model_was_not_trained_on(sample_ceop_zip,
                                                                          recorded_16):
    rc, out, err = run_module("run_inference", [
        "--input_data_path", sample_ceop_zip.shards_glob, "--exported_model_dir", recorded_16,
        "--image_size", "512", "--num_inference_samples", "3"])
    assert rc == 2 and out == ""
    assert errors(err) == [f"run_inference: error: --image_size 512: the model {recorded_16} "
                           f"was trained on 16x16 images (model_info.json); leave "
                           f"--image_size out, or give 16"]


def test_examples_of_another_size_than_the_record_name_the_model(sample_512, recorded_16):
    rc, _, err = run_module("run_inference", [
        "--input_data_path", sample_512.shards_glob, "--exported_model_dir", recorded_16,
        "--num_inference_samples", "1"])
    assert rc == 1
    (line,) = errors(err)
    assert "are 512x512 but the model" in line and "trained on 16x16 images" in line


# --- predict_map: the record sets the window; a conflict is refused up front

@pytest.fixture(scope="module")
def small_scene(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("scene") / "files")
    make_scene(SceneConfig(folder, 192, 192, seed=5, aux_degrees=0.003))
    return folder


@pytest.fixture(scope="module")
def smap_model(tmp_path_factory):
    """Predicts SMAP (the aux input's first value) as it is: NaN where SMAP
    is above 0.5, exactly 1.0 where it is above 0.45; trained on 32x32."""
    import tensorflow as tf

    def output(image, low_res, aux):
        smap = aux[:, 0]
        return tf.where(smap > 0.5, tf.fill(tf.shape(smap), np.float32("nan")),
                        tf.where(smap > 0.45, tf.ones_like(smap), smap))

    return export_model(tmp_path_factory.mktemp("smap_model"), output, image_size=32)


def test_predict_map_takes_its_window_from_the_record(small_scene, smap_model, tmp_path):
    out = str(tmp_path / "map.tif")
    rc, stdout, err = run_module("predict_map", [
        "--scene_path", small_scene, "--exported_model_dir", smap_model, "--output_path", out,
        "--stride", "32"])
    assert rc == 0, err
    summary = json.loads((tmp_path / "map.summary.json").read_text())
    assert summary["window"] == 32
    assert summary["rows"] == summary["columns"] == 6
    assert summary["nodata"]["outside_scene"] == 0  # 32x32 windows fit at every map pixel


def test_predict_map_refuses_a_window_the_model_was_not_trained_on(small_scene, smap_model,
                                                                   tmp_path):
    out = tmp_path / "map.tif"
    rc, stdout, err = run_module("predict_map", [
        "--scene_path", small_scene, "--exported_model_dir", smap_model, "--output_path",
        str(out), "--image_size", "512"])
    assert rc == 2 and not out.exists()
    assert errors(err) == [f"predict_map: error: --image_size 512: the model {smap_model} was "
                           f"trained on 32x32 images (model_info.json); leave --image_size "
                           f"out, or give 32"]


def test_an_odd_image_size_is_a_usage_error_for_a_map(small_scene, reference_model, tmp_path):
    rc, _, err = run_module("predict_map", [
        "--scene_path", small_scene, "--exported_model_dir", reference_model,
        "--output_path", str(tmp_path / "m.tif"), "--image_size", "33"])
    assert rc == 2
    assert errors(err) == ["predict_map: error: --image_size must be even for a map, not 33: "
                           "each window is centred on a scene pixel corner"]


def test_nan_from_the_model_is_a_cause_and_saturation_is_counted(small_scene, smap_model,
                                                                tmp_path):
    """The oracle: SMAP at each map pixel's centre, read with rasterio and
    pyproj, sets what the model answered: NaN above 0.5, 1.0 above 0.45."""
    import rasterio
    from pyproj import Transformer

    out = tmp_path / "map.tif"
    rc, stdout, err = run_module("predict_map", [
        "--scene_path", small_scene, "--exported_model_dir", smap_model,
        "--output_path", str(out), "--stride", "32"])
    assert rc == 0, err
    with rasterio.open(os.path.join(small_scene, "sentinel_1_VV.tif")) as ds:
        transform, crs = ds.transform, ds.crs
    with rasterio.open(os.path.join(small_scene, "smap_sm.tif")) as ds:
        smap, smap_transform, smap_crs = ds.read(1), ds.transform, ds.crs
    rows = cols = 6
    centres = [(i * 32 + 16, j * 32 + 16) for i in range(rows) for j in range(cols)]
    x, y = zip(*[transform @ (c, r) for r, c in centres])
    x, y = Transformer.from_crs(crs, smap_crs, always_xy=True).transform(x, y)
    expected = []
    for px, py in zip(x, y):
        col, row = ~smap_transform @ (px, py)
        v = np.float32(smap[int(np.floor(row)), int(np.floor(col))] / np.float32(255))
        expected.append(np.nan if v > 0.5 else 1.0 if v > 0.45 else v)
    expected = np.array(expected, np.float32).reshape(rows, cols)
    with rasterio.open(out) as ds:
        got = ds.read(1)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], atol=1e-6)
    summary = json.loads((tmp_path / "map.summary.json").read_text())
    n_nan = int(np.isnan(expected).sum())
    assert summary["nodata"]["model_nan"] == n_nan
    assert summary["predicted"] == rows * cols - n_nan and summary["accounted"]
    assert summary["saturated"] == int((expected == 1.0).sum())


@pytest.fixture(scope="module")
def stuck_model(tmp_path_factory):
    """Always exactly 1.0 (the upper clip bound), whatever it is fed."""
    import tensorflow as tf

    return export_model(tmp_path_factory.mktemp("stuck"),
                        lambda image, low_res, aux: tf.ones_like(aux[:, 0]))


def test_a_map_stuck_on_the_clip_bound_says_so_and_exits_1(small_scene, stuck_model, tmp_path):
    out = tmp_path / "map.tif"
    rc, stdout, err = run_module("predict_map", [
        "--scene_path", small_scene, "--exported_model_dir", stuck_model, "--output_path",
        str(out), "--stride", "32", "--image_size", "32"])
    assert rc == 1
    summary = json.loads((tmp_path / "map.summary.json").read_text())
    assert summary["saturated"] == summary["predicted"] == 36
    assert errors(err) == ["predict_map: error: all map pixels predicted sit exactly on the "
                           "model's clip bounds (0 or 1): the model is probably fed inputs "
                           "unlike its training's (another image size or encoding)"]


def test_inference_stuck_on_the_clip_bound_says_so_and_exits_1(sample_ceop_zip, stuck_model,
                                                               tmp_path):
    prefix = str(tmp_path / "pred")
    rc, stdout, err = run_module("run_inference", [
        "--input_data_path", sample_ceop_zip.shards_glob, "--exported_model_dir", stuck_model,
        "--image_size", "16", "--output_path", prefix])
    assert rc == 1
    summary = json.loads(open(prefix + "-summary.json").read())
    assert summary["saturated"] == summary["predicted"] > 0
    assert errors(err) == ["run_inference: error: all examples predicted sit exactly on the "
                           "model's clip bounds (0 or 1): the model is probably fed inputs "
                           "unlike its training's (another image size or encoding)"]
    rc, stdout, err = run_module("run_inference", [
        "--input_data_path", sample_ceop_zip.shards_glob, "--exported_model_dir", stuck_model,
        "--image_size", "16", "--num_inference_samples", "2"])
    assert rc == 1 and stdout.count("Prediction ") == 2
    assert errors(err) == ["run_inference: error: all examples predicted sit exactly on the "
                           "model's clip bounds (0 or 1): the model is probably fed inputs "
                           "unlike its training's (another image size or encoding)"]


def test_a_map_with_nothing_predicted_exits_1_naming_the_causes(small_scene, smap_model,
                                                                tmp_path):
    import rasterio

    scene = tmp_path / "scene"
    shutil.copytree(small_scene, scene)
    with rasterio.open(scene / "smap_sm.tif", "r+") as ds:
        ds.write(np.full((ds.height, ds.width), ds.nodata, ds.dtypes[0]), 1)
    out = tmp_path / "map.tif"
    rc, stdout, err = run_module("predict_map", [
        "--scene_path", str(scene), "--exported_model_dir", smap_model, "--output_path",
        str(out), "--stride", "32"])
    assert rc == 1 and out.exists()  # written, to look at
    assert errors(err) == ["predict_map: error: no map pixel could be predicted (NaN: 36 smap "
                           "nodata); the map, its quicklook and summary are written to look at: "
                           "does the scene cover the SMAP and GLDAS rasters, and is it larger "
                           "than a window?"]


def test_an_odd_recorded_image_size_names_the_record(small_scene, reference_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(reference_model, model)
    (model / "model_info.json").write_text('{"image_size": 33}')
    rc, _, err = run_module("predict_map", [
        "--scene_path", small_scene, "--exported_model_dir", str(model),
        "--output_path", str(tmp_path / "m.tif")])
    assert rc == 1
    assert errors(err) == [f"predict_map: error: the model {model} records image_size 33 "
                           f"(model_info.json): a map needs an even size (each window is "
                           f"centred on a scene pixel corner)"]
