"""The generated sample: readable by the ismn package and TensorFlow, deterministic."""

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from ismn.interface import ISMN_Interface

from transforms.dataset import schema, tfrecord_io

from transforms import synthetic


def _ground_truth(paths):
    with open(paths.ground_truth) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("fixture", ["sample_ceop_zip", "sample_hv_dir"])
def test_ismn_package_reads_the_series_written(fixture, request, tmp_path):
    paths = request.getfixturevalue(fixture)
    # the ismn package writes python_metadata/ beside the archive: use a copy
    copy = str(tmp_path / os.path.basename(paths.ismn_path))
    (shutil.copy if copy.endswith(".zip") else shutil.copytree)(paths.ismn_path, copy)
    ds = ISMN_Interface(copy, parallel=False)
    seen = 0
    for (net, station, sensor_name), series in paths.series.items():
        sensors = {s.name: s for s in ds.networks[net].stations[station].sensors.values()}
        data = sensors[sensor_name].read_data()
        var = data.columns[0]
        expected_times = pd.to_datetime(series.times, unit="s")
        assert (data.index.values == expected_times.values).all()
        np.testing.assert_allclose(data[var].to_numpy(), series.values, atol=1e-9)
        assert list(data[f"{var}_flag"]) == series.flags
        seen += 1
    assert seen == sum(len(s.sensors) for s in synthetic.STATIONS)


def test_ismn_files_are_crlf_with_real_naming(sample_hv_dir):
    root = sample_hv_dir.ismn_path
    names = []
    for dirpath, _, files in os.walk(root):
        names += [os.path.join(dirpath, f) for f in files if f.endswith(".stm")]
    adams = [n for n in names if "AdamsRanch#1_sm_0.050800_0.050800_Hydraprobe" in n]
    assert len(adams) == 1 and os.path.basename(adams[0]).startswith("SCAN_SCAN_")
    data = open(adams[0], "rb").read()
    assert data.count(b"\r\n") == data.count(b"\n") > 100
    statics = [f for _, _, fs in os.walk(root) for f in fs if f.endswith("static_variables.csv")]
    assert 0 < len(statics) < len(synthetic.STATIONS)  # some stations lack one


@pytest.mark.parametrize("fixture", ["sample_ceop_zip", "sample_hv_dir"])
def test_shards_parse_with_schema_spec(fixture, request):
    paths = request.getfixturevalue(fixture)
    size = 16
    spec = schema.parsing_spec(size)
    count = 0
    for shard in paths.shards:
        records = list(tfrecord_io.read_shard(shard))
        parsed = tf.io.parse_example(tf.constant(records), spec)
        count += len(records)
        for f in schema.FIELDS:
            t = parsed[f.name]
            expected_dtype = {"bytes": tf.string, "float": tf.float32, "int64": tf.int64}[f.kind.value]
            assert t.dtype == expected_dtype, f.name
            if f.shape is schema.Shape.IMAGE:
                assert t.shape == (len(records), size * size), f.name
                values = t.numpy()
                assert all(len(np.unique(v)) > 1 for v in values) or f.name.endswith("mask"), f.name
            elif f.shape is schema.Shape.SCALAR:
                assert t.shape == (len(records),), f.name
        # each example is labelled with at most one key, and labels only where planted
        labelled = ~np.isnan(parsed["sm_0_5"].numpy()) | ~np.isnan(parsed["sm_5_5"].numpy())
        truth = [r for r in _ground_truth(paths) if r["shard"] == os.path.basename(shard)]
        assert labelled.tolist() == [r["outcome"] == "prelabelled" for r in truth]
        ids = [s.decode() for s in parsed["sensor_id"].numpy()]
        assert ids == [r["sensor_id"] for r in truth]
        assert parsed["timestamp"].numpy().tolist() == [r["timestamp"] for r in truth]
    assert count == sum(1 for _ in _ground_truth(paths))


def test_images_are_smooth_not_white_noise(tmp_path):
    paths = synthetic.generate(synthetic.SampleConfig(
        output_dir=str(tmp_path), num_shards=1, examples_per_shard=2, image_size=128,
        ismn_days=20), log=lambda *_: None)
    rec = next(tfrecord_io.read_shard(paths.shards[0]))
    spec = schema.parsing_spec(128, ["sentinel_2_B4", "nasa_dem_elevation",
                                      "soil_grids_sand_sand_0-5cm_mean"])
    parsed = tf.io.parse_single_example(rec, spec)
    for name, img in parsed.items():
        img = img.numpy().reshape(128, 128).astype(float)
        neighbour = np.abs(np.diff(img, axis=1)).mean()
        shuffled = np.abs(np.diff(np.random.default_rng(0).permutation(img.ravel()))).mean()
        assert neighbour < 0.35 * shuffled, name  # spatially correlated
    sand = parsed["soil_grids_sand_sand_0-5cm_mean"].numpy()
    assert 0 <= sand.min() and sand.max() <= 1000
    manifest = json.load(open(paths.manifest))
    assert manifest["compression_ratio"] > 1.5


def test_same_seed_same_bytes(tmp_path):
    def make(d, seed):
        return synthetic.generate(synthetic.SampleConfig(
            output_dir=str(tmp_path / d), num_shards=2, examples_per_shard=3, image_size=8,
            seed=seed, ismn_days=15), log=lambda *_: None)

    a, b, c = make("a", 5), make("b", 5), make("c", 6)
    for pa, pb, pc in zip(a.shards, b.shards, c.shards):
        assert open(pa, "rb").read() == open(pb, "rb").read()
        assert open(pa, "rb").read() != open(pc, "rb").read()
    assert open(a.ismn_path, "rb").read() == open(b.ismn_path, "rb").read()
    assert open(a.ground_truth).read() == open(b.ground_truth).read()


def test_ground_truth_covers_every_planted_case(sample_ceop_zip):
    truth = _ground_truth(sample_ceop_zip)
    assert {r["case"] for r in truth} == set(synthetic.CATEGORIES)
    for r in truth:
        if r["outcome"] in ("success", "prelabelled"):
            assert 0.01 <= r["label"] <= 0.6
        else:
            assert "label" not in r
    ambiguous = [r for r in truth if r.get("ambiguous_station")]
    assert all(r["ismn_station"] == "Bushland#1" for r in ambiguous)


def test_ground_truth_agrees_with_the_series(sample_ceop_zip):
    """Each ISMN outcome follows from the window rule on the written series."""
    for r in _ground_truth(sample_ceop_zip):
        if "ismn_sensor" not in r or r["case"] == "no_sensor":
            continue
        s = sample_ceop_zip.series[(r["ismn_network"], r["ismn_station"], r["ismn_sensor"])]
        t = int(np.float32(r["timestamp"])) // 1000
        assert abs(t - r["reading_time_s"]) <= 66  # float32 rounding of the millis
        hits = s.window(t)
        assert len(hits) == {"success": 1, "value": 2, "lookup": 0}[r["outcome"]]
        if r["outcome"] == "success":
            assert s.values[hits[0]] == r["label"]


def test_labels_depend_on_inputs(tmp_path):
    paths = synthetic.generate(synthetic.SampleConfig(
        output_dir=str(tmp_path), num_shards=1, examples_per_shard=120, image_size=8,
        ismn_days=120), log=lambda *_: None)
    truth = _ground_truth(paths)
    recs = list(tfrecord_io.read_shard(paths.shards[0]))
    parsed = tf.io.parse_example(tf.constant(recs), schema.parsing_spec(8, ["smap_sm", "gldas_sm"]))
    labelled = [i for i, r in enumerate(truth) if "label" in r]
    y = np.array([truth[i]["label"] for i in labelled])
    smap = parsed["smap_sm"].numpy()[labelled]
    gldas = parsed["gldas_sm"].numpy()[labelled]
    assert np.corrcoef(smap, y)[0, 1] > 0.4
    assert np.corrcoef(gldas, y)[0, 1] > 0.2


def test_config_validation():
    with pytest.raises(ValueError, match="ismn_format"):
        synthetic.SampleConfig(output_dir="x", ismn_format="csv")
    with pytest.raises(ValueError, match="ismn_layout"):
        synthetic.SampleConfig(output_dir="x", ismn_layout="tar")
