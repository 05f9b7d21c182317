"""predict_map: every map pixel is the model on its window, as the README's
geometry restates it; nodata by cause; georeferencing; the bad inputs.

The oracle (``oracle_map``) reads the whole small scene with rasterio,
finds each centre's SMAP/GLDAS pixel with pyproj, decodes with numpy and
feeds the model 512 x 512 examples cut at each centre (zeros outside the
scene) through a plain TensorFlow session: it imports nothing of
``transforms.mapping`` or ``model_runner``.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from transforms.mapping.geometry import MapGeometry
from transforms.synthetic.scene import SceneConfig, make_scene

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = ("sentinel_1_VV", "sentinel_1_VH", "sentinel_1_angle", "sentinel_2_B4", "sentinel_2_B3",
         "sentinel_2_B2", "sentinel_2_B8", "sentinel_2_B11", "sentinel_2_B12",
         "nasa_dem_elevation")
LOW_RES = ("soil_grids_sand_sand_0-5cm_mean", "soil_grids_silt_silt_0-5cm_mean",
           "soil_grids_clay_clay_0-5cm_mean", "soil_grids_bd_bdod_0-5cm_mean")
HEIGHT, WIDTH, STRIDE = 608, 672, 64  # the windows of row 7 and column 8 end on the edge
CLOUD = (300, 340, 400, 420)  # rows r0:r1, cols c0:c1 of nodata in sentinel_2_B4


def run_cli(argv, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "pipelines.predict_map", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("scene") / "files")
    make_scene(SceneConfig(folder, HEIGHT, WIDTH, seed=3, nodata_box=CLOUD))
    return folder


def oracle_map(scene_dir, model_dir, stride, pad=False):
    """``(values, causes)``: the README's rule restated pixel by pixel."""
    import rasterio
    import tensorflow as tf
    from pyproj import Transformer

    def band(name):
        path = os.path.join(scene_dir, f"{name}.tif")
        with rasterio.open(path) as ds:
            return ds.read(1).astype(np.int64), ds.nodata, ds.transform, ds.crs

    bands = {n: band(n) for n in IMAGE + LOW_RES}
    _, _, transform, crs = bands[IMAGE[0]]
    height, width = bands[IMAGE[0]][0].shape
    aux = {}
    for name in ("smap_sm", "gldas_sm"):
        with rasterio.open(os.path.join(scene_dir, f"{name}.tif")) as ds:
            aux[name] = (ds.read(1), ds.nodata, ds.transform, Transformer.from_crs(
                crs, ds.crs, always_xy=True))
    v1 = tf.compat.v1
    graph = tf.Graph()
    session = v1.Session(graph=graph)
    with graph.as_default():
        v1.saved_model.loader.load(session, ["serve"], model_dir)
    rows, cols = height // stride, width // stride
    values = np.full((rows, cols), np.nan, np.float32)
    causes = np.zeros((rows, cols), dtype=object)
    for i in range(rows):
        for j in range(cols):
            ci, cj = i * stride + stride // 2, j * stride + stride // 2  # the centre
            top, left = ci - 128, cj - 128  # the released model's 256 x 256 window
            if not pad and (top < 0 or left < 0 or top + 256 > height or left + 256 > width):
                causes[i, j] = "outside_scene"
                continue
            r0, r1, c0, c1 = max(top, 0), min(top + 256, height), max(left, 0), min(left + 256, width)
            if any(nodata is not None and (arr[r0:r1, c0:c1] == nodata).any()
                   for arr, nodata, _, _ in bands.values()):
                causes[i, j] = "band_nodata"
                continue
            x, y = transform @ (cj, ci)
            scalars, failed = [], None
            for name in ("smap_sm", "gldas_sm"):
                grid, nodata, aux_transform, to_aux = aux[name]
                col, row = ~aux_transform @ to_aux.transform(x, y)
                row, col = int(np.floor(row)), int(np.floor(col))
                if not (0 <= row < grid.shape[0] and 0 <= col < grid.shape[1]):
                    failed = failed or f"{name.split('_')[0]}_outside"
                elif grid[row, col] == nodata:
                    failed = failed or f"{name.split('_')[0]}_nodata"
                else:
                    scalars.append(grid[row, col] / 255.0)
            if failed:
                causes[i, j] = failed
                continue

            def cut(names):  # a 512 x 512 example centred on (ci, cj), zeros outside the scene
                out = np.zeros((512, 512, len(names)), np.float32)
                for k, n in enumerate(names):
                    arr = bands[n][0]
                    if n == "nasa_dem_elevation":
                        arr = np.trunc(np.clip(arr / 3000.0 * 255.0, 0, 255))
                    R0, C0 = ci - 256, cj - 256
                    rr0, rr1 = max(R0, 0), min(R0 + 512, height)
                    cc0, cc1 = max(C0, 0), min(C0 + 512, width)
                    out[rr0 - R0:rr1 - R0, cc0 - C0:cc1 - C0, k] = arr[rr0:rr1, cc0:cc1]
                return out[None]

            values[i, j] = session.run("clip_by_value:0", {
                "ImageTensor:0": cut(IMAGE), "LowResImageTensor:0": cut(LOW_RES),
                "AuxTensor:0": np.array([scalars], np.float32)}).reshape(-1)[0]
            causes[i, j] = "predicted"
    session.close()
    return values, causes


@pytest.fixture(scope="module")
def mapped(scene, reference_model, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("maps") / "map.tif")
    rc, stdout, stderr = run_cli(["--scene_path", scene, "--exported_model_dir", reference_model,
                                  "--output_path", out, "--stride", str(STRIDE),
                                  "--tile_size", "4", "--batch_size", "5"])
    assert rc == 0, stderr[-3000:]
    return out, stdout


def read_map(path):
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read(1), ds.transform, ds.crs, ds.profile, ds.tags(), ds.descriptions


def test_geometry_covers_each_map_pixel_once_and_regions_hold_their_windows():
    for height, width, stride, window, tile in ((640, 704, 64, 256, 4), (100, 37, 2, 6, 7),
                                                (33, 65, 32, 512, 1), (512, 512, 32, 256, 64)):
        g = MapGeometry(height, width, stride, window, tile)
        seen = np.zeros(g.shape, dtype=int)
        for t in g.tiles():
            seen[t.row:t.row + t.height, t.col:t.col + t.width] += 1
            region = g.region(t)
            for i in (t.row, t.row + t.height - 1):
                for j in (t.col, t.col + t.width - 1):
                    r, c = g.window_origin(i, j)
                    assert region.row <= r and r + window <= region.row + region.height
                    assert region.col <= c and c + window <= region.col + region.width
        assert seen.shape == (height // stride, width // stride) and (seen == 1).all()
    assert MapGeometry(640, 704, 64, 256).window_origin(2, 3) == (2 * 64 + 32 - 128,
                                                                 3 * 64 + 32 - 128)
    with pytest.raises(ValueError):
        MapGeometry(64, 64, 3, 256)


def test_band_values_read_packed_and_other_layouts_alike():
    from transforms.dataset import example_proto
    from transforms.mapping.examples import band_values

    rng = np.random.default_rng(4)
    packed = rng.integers(-2 ** 40, 2 ** 40, 36)
    floats = rng.normal(size=36).astype(np.float32)
    record = example_proto.encode_example({"a": ("int64", packed), "b": ("float", floats),
                                           "c": ("int64", packed[:30])})
    got = band_values(record, ("a", "b", "c", "d"), 6)
    expected = example_proto.read_features(record, ("a", "b", "c"))
    for name in ("a", "b", "c"):
        assert np.array_equal(got[name], np.asarray(expected[name], np.float64)), name
    assert got["d"].size == 0


def test_band_planes_become_the_channels_of_each_window_exactly():
    from transforms.mapping.tiles import channels_last

    rng = np.random.default_rng(3)
    planes = rng.integers(-32768, 32767, (10, 150, 70)).astype(np.int32)
    planes[0, 0, 0] = 2 ** 24 + 1  # rounds as an int64 -> float32 cast does
    out = channels_last(planes, rows=64)
    assert out.shape == (150, 70, 10) and out.dtype == planes.dtype
    for c in range(10):
        assert np.array_equal(out[:, :, c], planes[c])  # every row block, the last one short


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities: Linux")
def test_tiles_are_read_at_a_lower_priority_than_the_model():
    import threading

    from transforms.mapping.pipeline import READER_NICENESS, at_low_priority

    seen = []

    def items():
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        yield 1

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=lambda: list(at_low_priority(items())))
    thread.start()
    thread.join()
    assert seen == [min(19, mine + READER_NICENESS)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # the caller's own


def test_every_map_pixel_is_the_model_on_its_window(scene, reference_model, mapped):
    path, stdout = mapped
    values, transform, crs, profile, tags, descriptions = read_map(path)
    expected, causes = oracle_map(scene, reference_model, STRIDE)
    assert values.shape == (HEIGHT // STRIDE, WIDTH // STRIDE)
    predicted = causes == "predicted"
    assert predicted.sum() >= 20 and (causes == "band_nodata").sum() >= 1
    np.testing.assert_allclose(values[predicted], expected[predicted], atol=1e-5, rtol=0)
    assert np.isnan(values[~predicted]).all()
    summary = json.load(open(path[:-len(".tif")] + ".summary.json"))
    for cause in ("outside_scene", "band_nodata", "smap_outside", "smap_nodata"):
        assert summary["nodata"][cause] == int((causes == cause).sum()), cause
    assert summary["predicted"] == int(predicted.sum()) and summary["accounted"]
    assert summary["pixels"] == values.size
    assert os.path.exists(path[:-len(".tif")] + ".png") and "Quicklook" in stdout


def test_a_local_map_loads_the_model_once(scene, reference_model, tmp_path, monkeypatch):
    """The window check's session is the one the in-process worker predicts with."""
    from model_runner import windows
    from pipelines import predict_map

    loads, real = [], windows.load_session
    monkeypatch.setattr(windows, "load_session", lambda *a, **k: loads.append(a) or real(*a, **k))
    out = str(tmp_path / "map.tif")
    assert predict_map.main(["--scene_path", scene, "--exported_model_dir", reference_model,
                             "--output_path", out, "--stride", str(STRIDE)]) == 0
    assert len(loads) == 1 and not windows._SPARE
    # a run refused after the check (no worker takes it) leaves no session open either
    assert predict_map.main(["--scene_path", scene, "--exported_model_dir", reference_model,
                             "--output_path", str(tmp_path / "no.tif"), "--stride", "4096"]) == 1
    assert len(loads) == 2 and not windows._SPARE


def test_the_map_is_georeferenced_as_the_scene_scaled_by_the_stride(scene, mapped):
    import rasterio

    path, _ = mapped
    _, transform, crs, profile, tags, descriptions = read_map(path)
    with rasterio.open(os.path.join(scene, "sentinel_1_VV.tif")) as ds:
        assert crs == ds.crs
        assert transform == ds.transform @ ds.transform.scale(STRIDE)
    assert profile["dtype"] == "float32" and np.isnan(profile["nodata"])
    assert profile["tiled"] and descriptions[0] == "soil_moisture_m3_m3"
    assert tags["stride"] == str(STRIDE) and "model" in tags and "project_version" in tags
    with rasterio.open(path) as ds:  # a COG: overviews inside
        assert ds.overviews(1) or min(ds.height, ds.width) <= 256


def test_a_multiband_scene_gives_the_same_map(scene, reference_model, mapped, tmp_path):
    folder = str(tmp_path / "multi")
    make_scene(SceneConfig(folder, HEIGHT, WIDTH, seed=3, nodata_box=CLOUD, layout="multiband"))
    out = str(tmp_path / "multi.tif")
    rc, _, stderr = run_cli(["--scene_path", folder, "--exported_model_dir", reference_model,
                             "--output_path", out, "--stride", str(STRIDE), "--tile_size", "4",
                             "--batch_size", "5"])  # the same batches: the same floats
    assert rc == 0, stderr[-2000:]
    np.testing.assert_array_equal(read_map(out)[0], read_map(mapped[0])[0])


def test_pad_mode_predicts_the_edges_as_zero_padded_windows(scene, reference_model, tmp_path):
    out = str(tmp_path / "pad.tif")
    rc, _, stderr = run_cli(["--scene_path", scene, "--exported_model_dir", reference_model,
                             "--output_path", out, "--stride", str(STRIDE), "--edge_mode", "pad"])
    assert rc == 0, stderr[-2000:]
    expected, causes = oracle_map(scene, reference_model, STRIDE, pad=True)
    values = read_map(out)[0]
    predicted = causes == "predicted"
    assert (causes == "outside_scene").sum() == 0
    np.testing.assert_allclose(values[predicted], expected[predicted], atol=1e-5, rtol=0)


def _bad_scene(scene, tmp_path, change):
    folder = tmp_path / "bad"
    shutil.copytree(scene, folder)
    change(str(folder))
    return str(folder)


def _rewrite(path, **changes):
    import rasterio

    with rasterio.open(path) as ds:
        data, profile = ds.read(1), dict(ds.profile)
    profile.update(changes)
    os.remove(path)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data.astype(profile["dtype"]), 1)


@pytest.mark.parametrize("case,rc,words", [
    ("missing", 1, "lacks the bands sentinel_2_B8"),
    ("unknown", 1, "no band of the model"),
    ("float", 1, "float32"),
    ("empty band folder", 1, "holds no GeoTIFF"),
    ("corrupt", 1, "not a readable GeoTIFF"),
])
def test_a_scene_that_cannot_be_mapped_is_one_line_naming_the_file(
        scene, reference_model, tmp_path, case, rc, words):
    changes = {
        "missing": lambda f: os.remove(os.path.join(f, "sentinel_2_B8.tif")),
        "unknown": lambda f: (shutil.copy(os.path.join(f, "smap_sm.tif"),
                                          os.path.join(f, "sentinel_3.tif")),
                              _rewrite(os.path.join(f, "sentinel_3.tif"))),  # no description
        "float": lambda f: _rewrite(os.path.join(f, "sentinel_2_B8.tif"), dtype="float32"),
        "empty band folder": lambda f: (os.remove(os.path.join(f, "sentinel_2_B8.tif")),
                                        os.mkdir(os.path.join(f, "sentinel_2_B8"))),
        "corrupt": lambda f: open(os.path.join(f, "sentinel_2_B8.tif"), "wb").write(b"II*\0junk"),
    }
    folder = _bad_scene(scene, tmp_path, changes[case])
    out = tmp_path / "out" / "map.tif"
    got, _, stderr = run_cli(["--scene_path", folder, "--exported_model_dir", reference_model,
                              "--output_path", str(out)])
    lines = [line for line in stderr.splitlines() if line.strip() and " INFO " not in line]
    assert got == rc and len(lines) == 1 and words in lines[0], stderr[-2000:]
    assert not out.exists()


@pytest.mark.parametrize("argv,words", [
    (["--stride", "33"], "--stride must be a positive even number"),
    (["--stride", "0"], "--stride must be a positive even number"),
    (["--scene_path", "/no/such/scene"], "is not a folder"),
])
def test_usage_errors_exit_2(scene, reference_model, tmp_path, argv, words):
    base = {"--scene_path": scene, "--exported_model_dir": reference_model,
            "--output_path": str(tmp_path / "m.tif")}
    base.update(dict(zip(argv[::2], argv[1::2])))
    got, _, stderr = run_cli([x for kv in base.items() for x in kv])
    assert got == 2 and words in stderr, stderr[-2000:]


def test_an_output_that_would_overwrite_a_scene_file_is_refused(scene, reference_model, tmp_path):
    folder = _bad_scene(scene, tmp_path, lambda f: None)
    target = os.path.join(folder, "sentinel_1_VV.tif")
    before = open(target, "rb").read()
    got, _, stderr = run_cli(["--scene_path", folder, "--exported_model_dir", reference_model,
                              "--output_path", target])
    assert got == 2 and "would replace the input" in stderr
    assert open(target, "rb").read() == before


def test_a_scene_smaller_than_one_window_is_refused(reference_model, tmp_path):
    folder = str(tmp_path / "small")
    make_scene(SceneConfig(folder, 200, 300, seed=1))
    got, _, stderr = run_cli(["--scene_path", folder, "--exported_model_dir", reference_model,
                              "--output_path", str(tmp_path / "m.tif")])
    assert got == 1 and "smaller than one 256x256 window" in stderr


def test_the_same_command_builds_a_dataflow_job(scene, reference_model):
    from pipelines import predict_map

    r = predict_map.run(["--scene_path", scene, "--exported_model_dir", reference_model,
                         "--output_path", "gs://my-bucket-123/maps/m.tif",
                         "--runner", "DataflowRunner", "--project", "my-project-123",
                         "--region", "us-central1", "--temp_location", "gs://my-bucket-123/tmp",
                         "--dry_run=True", "--no_auth", "--sdk_location=container"])
    assert r["dry_run"] and any(n.startswith("Predict map/Run model") for n in r["transforms"])


def test_cut_examples_then_run_inference_give_the_map_values(reference_model, tmp_path):
    import csv

    import rasterio
    from pyproj import Transformer

    folder = str(tmp_path / "clean")
    make_scene(SceneConfig(folder, 768, 768, seed=5))
    out = str(tmp_path / "clean.tif")
    rc, _, stderr = run_cli(["--scene_path", folder, "--exported_model_dir", reference_model,
                             "--output_path", out, "--stride", "64"])
    assert rc == 0, stderr[-2000:]
    values = read_map(out)[0]
    with rasterio.open(os.path.join(folder, "sentinel_1_VV.tif")) as ds:
        transform, crs = ds.transform, ds.crs
    to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
    points, expected = tmp_path / "points.csv", {}
    with open(points, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sensor_id", "lat", "lon"])
        for i in range(4, 8):  # the map pixels whose 512 x 512 example fits in the scene
            for j in range(4, 8):
                lon, lat = to_lonlat.transform(*(transform @ (j * 64 + 32, i * 64 + 32)))
                writer.writerow([f"NET__P{i}_{j}__X", repr(lat), repr(lon)])
                expected[f"NET__P{i}_{j}__X"] = values[i, j]
        writer.writerow(["NET__EDGE__X", repr(lat + 0.05), repr(lon)])  # cannot be cut
    examples = tmp_path / "examples"
    proc = subprocess.run([sys.executable, "-m", "pipelines.cut_examples", "--scene_path", folder,
                           "--points", str(points), "--timestamp", "2021-06-01T10:30:00Z",
                           "--output_dir", str(examples)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    failures = [json.loads(line) for line in open(examples / "failures.jsonl")]
    assert [f["sensor_id"] for f in failures] == ["NET__EDGE__X"]
    proc = subprocess.run([sys.executable, "-m", "pipelines.run_inference", "--input_data_path",
                           str(examples / "*.tfrecord.gz"), "--exported_model_dir",
                           reference_model, "--output_path", str(tmp_path / "pred" / "p")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / "pred" / "p-00000-of-00001.csv") as f:
        got = {r["sensor_id"]: float(r["prediction"]) for r in csv.DictReader(f)}
    assert set(got) == set(expected)
    for sensor_id, value in expected.items():
        assert got[sensor_id] == pytest.approx(float(value), abs=1e-5), sensor_id

    # the same examples checked against the scene they came from, and another one
    for scene_dir, same in ((folder, True), (str(tmp_path / "other"), False)):
        if not same:
            make_scene(SceneConfig(scene_dir, 768, 768, seed=6))
        proc = subprocess.run([sys.executable, "-m", "pipelines.cut_examples", "--scene_path",
                               scene_dir, "--compare_with", str(examples / "*.tfrecord.gz"),
                               "--output_dir", str(tmp_path / f"compare{same}")], cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        found = json.load(open(tmp_path / f"compare{same}" / "compare.json"))
        assert found["examples"] == len(expected) and found["skipped"] == 0
        assert "| sentinel_1_VV |" in proc.stdout
        for band, m in found["bands"].items():
            assert m["pixels"] == len(expected) * 512 * 512, band
            if same:
                assert m["mean_abs_diff"] == 0 and m["r"] == pytest.approx(1.0), band
            else:  # other noise on the same smooth fields: differences, however correlated
                assert m["mean_abs_diff"] > 0, band
