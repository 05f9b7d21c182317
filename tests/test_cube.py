"""predict_map over several scenes: a Zarr cube (or a folder of maps) whose
every time is the single-scene map of that time's scene, bit for bit, read
by xarray and rioxarray with the COG's CRS and transform; appends that
equal writing every time at once; refusals that leave the cube as it was.

The single-scene maps are the oracle here: their pixels are checked against
an independent restatement in ``test_predict_map.py``/``test_map_rules.py``.
SMAP and GLDAS in the cube are restated here from the rasters (pyproj and
rasterio, nothing of the map code).
"""

import hashlib
import os
import shutil

import numpy as np
import pytest

from transforms.synthetic.scene import SceneConfig, make_scene

TIMES = ("2021-06-01T10:00", "2021-06-07T10:00", "2021-06-13T10:30:15")
HEIGHT, WIDTH, STRIDE, TILE = 256, 352, 32, 4
MAP_FLAGS = ["--stride", str(STRIDE), "--tile_size", str(TILE), "--image_size", "64",
             "--batch_size", "16"]


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    import map_oracle

    root = tmp_path_factory.mktemp("series")
    for k, when in enumerate(TIMES):
        make_scene(SceneConfig(str(root / "scenes" / f"scene_{when}"), HEIGHT, WIDTH,
                               seed=11 + k, nodata_box=(100, 140, 60, 90) if k == 1 else None))
    model = map_oracle.export_linear_model(str(root / "model"))
    return root, model


def predict(argv, capfd=None):
    from pipelines import predict_map

    code = predict_map.main(argv)
    out = capfd.readouterr() if capfd else None
    return code, out


def scenes_glob(root, pattern="scene_*"):
    return str(root / "scenes" / pattern)


@pytest.fixture(scope="module")
def cube(series):
    root, model = series
    out = str(root / "out" / "cube.zarr")
    code, _ = predict(["--scene_path", scenes_glob(root), "--exported_model_dir", model,
                       "--output_path", out, *MAP_FLAGS])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def single_maps(series):
    root, model = series
    maps = []
    for when in TIMES:
        out = str(root / "single" / f"{when.replace(':', '')}.tif")
        code, _ = predict(["--scene_path", str(root / "scenes" / f"scene_{when}"),
                           "--exported_model_dir", model, "--output_path", out, *MAP_FLAGS])
        assert code == 0
        maps.append(out)
    return maps


def test_each_time_of_the_cube_is_its_scenes_single_map_bit_for_bit(cube, single_maps):
    import rasterio
    import rioxarray  # noqa: F401  (the .rio accessor)
    import xarray

    ds = xarray.open_zarr(cube)
    assert ds.soil_moisture.dims == ("time", "y", "x")
    assert ds.time.dtype == np.dtype("datetime64[ns]")
    assert [str(t)[:19] for t in ds.time.values.astype("datetime64[s]")] == [
        "2021-06-01T10:00:00", "2021-06-07T10:00:00", "2021-06-13T10:30:15"]
    assert ds.soil_moisture.encoding["chunks"] == (1, TILE, TILE)
    for k, path in enumerate(single_maps):
        with rasterio.open(path) as cog:
            expected, transform, crs = cog.read(1), cog.transform, cog.crs
            assert cog.tags()["time"] == str(ds.time.values[k].astype("datetime64[s]")) + "Z"
        got = ds.soil_moisture.values[k]
        assert got.dtype == np.float32 and np.isfinite(expected).sum() > 10
        assert np.array_equal(np.isnan(got), np.isnan(expected))
        assert np.array_equal(got.view(np.uint32)[np.isfinite(got)],
                              expected.view(np.uint32)[np.isfinite(expected)])
        assert ds.soil_moisture.rio.crs == crs
        assert ds.soil_moisture.rio.transform() == transform
        cols, rows = np.arange(expected.shape[1]) + 0.5, np.arange(expected.shape[0]) + 0.5
        assert np.allclose(ds.x.values, transform.c + transform.a * cols, rtol=0, atol=1e-6)
        assert np.allclose(ds.y.values, transform.f + transform.e * rows, rtol=0, atol=1e-6)
    assert not np.array_equal(ds.soil_moisture.values[0], ds.soil_moisture.values[2],
                              equal_nan=True)
    attrs = ds.attrs
    assert attrs["product"] == "soil_moisture_cube" and attrs["stride"] == str(STRIDE)
    assert attrs["model"] and attrs["project_version"] and attrs["window"] == "64"
    assert not [p for p in os.listdir(os.path.dirname(cube)) if ".tmp-" in p]


def test_smap_and_gldas_in_the_cube_are_the_rasters_at_each_pixel_centre(series, cube):
    import rasterio
    import xarray
    from pyproj import Transformer

    root, _ = series
    ds = xarray.open_zarr(cube)
    for k, when in enumerate(TIMES):
        for name in ("smap_sm", "gldas_sm"):
            with rasterio.open(str(root / "scenes" / f"scene_{when}" / f"{name}.tif")) as src:
                raster, nodata = src.read(1), src.nodatavals[0]
                to_src = Transformer.from_crs(ds.rio.crs.to_wkt(), src.crs.to_wkt(),
                                              always_xy=True)
                x, y = np.meshgrid(ds.x.values, ds.y.values)
                sx, sy = to_src.transform(x, y)
                fc, fr = ~src.transform @ (sx, sy)
            r, c = np.floor(fr).astype(int), np.floor(fc).astype(int)
            inside = (r >= 0) & (c >= 0) & (r < raster.shape[0]) & (c < raster.shape[1])
            expected = np.full(x.shape, np.nan, np.float32)
            expected[inside] = raster[r[inside], c[inside]]
            if nodata is not None:
                expected[expected == nodata] = np.nan
            assert np.isfinite(expected).sum() > 20
            got = ds[name].values[k]
            assert np.array_equal(got, expected, equal_nan=True), (when, name)


def tree(path):
    """Every file under ``path`` with its content's hash."""
    out = {}
    for folder, _, names in os.walk(path):
        for name in names:
            full = os.path.join(folder, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_appending_gives_the_cube_written_at_once_and_refusals_leave_it_as_it_was(
        series, cube, tmp_path, capfd, monkeypatch):
    import xarray

    root, model = series
    out = str(tmp_path / "part.zarr")
    flags = ["--exported_model_dir", model, "--output_path", out, *MAP_FLAGS]
    assert predict(["--scene_path", scenes_glob(root, "scene_2021-06-0*"), *flags])[0] == 0
    first = tree(out)
    code, said = predict(["--scene_path", scenes_glob(root, "scene_2021-06-1*"), "--append",
                          *flags], capfd)
    assert code == 0, said.err
    assert all(first[p] == h for p, h in tree(out).items()
               if p in first and not os.path.basename(p).startswith(".z")
               and not p.startswith("time")), "an existing chunk was rewritten"
    whole, part = xarray.open_zarr(cube), xarray.open_zarr(out)
    assert np.array_equal(whole.time.values, part.time.values)
    for name in ("soil_moisture", "smap_sm", "gldas_sm"):
        assert np.array_equal(whole[name].values, part[name].values, equal_nan=True), name
    assert [s["time"] for s in __import__("json").loads(part.attrs["scenes"])] == [
        "2021-06-01T10:00:00Z", "2021-06-07T10:00:00Z", "2021-06-13T10:30:15Z"]
    done = tree(out)
    # a time already present
    code, said = predict(["--scene_path", scenes_glob(root, "scene_2021-06-07*"), "--append",
                          *flags], capfd)
    assert code == 1 and "2021-06-07T10:00:00Z" in said.err and "already in the cube" in said.err
    assert tree(out) == done
    # a failure while the new times are written, then while they are committed (after
    # the chunks moved in and the arrays grew): the cube as it was, no staging store left
    import zarr

    from transforms.mapping import cube_store

    later = tmp_path / "later" / "scene_2021-07-01T10:00"
    shutil.copytree(root / "scenes" / f"scene_{TIMES[0]}", later)

    def broken(*args, **kwargs):
        raise OSError("disk full (test)")

    for module, name in ((zarr, "consolidate_metadata"), (cube_store, "consolidate")):
        monkeypatch.setattr(module, name, broken)
        code, said = predict(["--scene_path", str(later), "--append", *flags], capfd)
        assert code != 0 and "disk full" in said.err
        monkeypatch.undo()
        assert tree(out) == done, f"a failed append ({name}) changed the cube"
        assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
        assert xarray.open_zarr(out).time.size == 3


def test_an_append_onto_another_grid_or_to_a_store_not_ours_is_refused(series, cube, tmp_path,
                                                                       capfd):
    root, model = series
    shifted = tmp_path / "scene_2022-01-01T10:00"
    make_scene(SceneConfig(str(shifted), HEIGHT, WIDTH, seed=5, origin=(500320.0, 5300000.0)))
    copy = str(tmp_path / "copy.zarr")
    shutil.copytree(cube, copy)
    before = tree(copy)
    flags = ["--exported_model_dir", model, *MAP_FLAGS]
    code, said = predict(["--scene_path", str(shifted), "--append", "--output_path", copy,
                          *flags], capfd)
    assert code == 1 and "grid" in said.err and "transform" in said.err
    assert tree(copy) == before
    code, said = predict(["--scene_path", str(shifted), "--append", "--output_path", copy,
                          *flags[:-len(MAP_FLAGS)], "--stride", "64", "--image_size", "64",
                          "--tile_size", "2"], capfd)
    assert code == 1 and tree(copy) == before
    other = tmp_path / "other.zarr"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, said = predict(["--scene_path", str(shifted), "--append", "--output_path", str(other),
                          *flags], capfd)
    assert code == 1 and "not a Zarr store" in said.err or "not a soil-moisture cube" in said.err
    code, said = predict(["--scene_path", str(shifted), "--output_path", str(other), *flags],
                         capfd)
    assert code == 2 and "not a cube of ours" in said.err
    assert (other / "notes.txt").read_text() == "mine"


def test_scenes_that_cannot_make_a_cube_are_refused_naming_the_scene(series, tmp_path, capfd):
    root, model = series
    flags = ["--exported_model_dir", model, *MAP_FLAGS]
    cube = str(tmp_path / "c.zarr")
    untimed = tmp_path / "a" / "scene_one"
    shutil.copytree(root / "scenes" / f"scene_{TIMES[0]}", untimed)
    code, said = predict(["--scene_path", str(tmp_path / "a" / "scene_*"), "--output_path",
                          cube, *flags], capfd)
    assert code == 1 and "scene_one has no time" in said.err
    twice = tmp_path / "b"
    shutil.copytree(root / "scenes" / f"scene_{TIMES[0]}", twice / "x_2021-06-01T10:00")
    shutil.copytree(root / "scenes" / f"scene_{TIMES[1]}", twice / "y_2021-06-01T10:00:00")
    code, said = predict(["--scene_path", str(twice / "*"), "--output_path", cube, *flags],
                         capfd)
    assert code == 1 and "both at 2021-06-01T10:00:00Z" in said.err
    grids = tmp_path / "g"
    shutil.copytree(root / "scenes" / f"scene_{TIMES[0]}", grids / f"scene_{TIMES[0]}")
    make_scene(SceneConfig(str(grids / "scene_2021-06-02T10:00"), HEIGHT, WIDTH + 32, seed=2))
    code, said = predict(["--scene_path", str(grids / "*"), "--output_path", cube, *flags],
                         capfd)
    assert code == 1 and "scene_2021-06-02T10:00 is not on the grid" in said.err
    assert "size" in said.err and not os.path.exists(cube)
    for argv, words in (
            (["--scene_path", scenes_glob(root), "--output_path", str(tmp_path / "m.tif")],
             "names several scenes"),
            (["--scene_path", str(tmp_path / "none_*"), "--output_path", cube], "matches no"),
            (["--scene_path", str(root / "scenes" / f"scene_{TIMES[0]}"), "--output_path",
              str(tmp_path / "m.tif"), "--append"], "--append adds times to a cube"),
            (["--scene_path", scenes_glob(root), "--output_path", str(tmp_path / "n.zarr"),
              "--append"], "no cube"),
            (["--scene_path", scenes_glob(root), "--output_path", str(tmp_path / "x.png")],
             "--output_path"),
            (["--scene_path", scenes_glob(root), "--output_path",
              str(root / "scenes" / f"scene_{TIMES[1]}" / "c.zarr")], "inside the scene folder")):
        code, said = predict([*argv, *flags], capfd)
        assert code == 2 and words in said.err, (argv, said.err)


def test_a_folder_output_writes_one_cog_a_time_equal_to_the_single_maps(series, single_maps,
                                                                        tmp_path):
    import rasterio

    root, model = series
    folder = str(tmp_path / "maps") + "/"
    code, _ = predict(["--scene_path", scenes_glob(root), "--exported_model_dir", model,
                       "--output_path", folder, *MAP_FLAGS])
    assert code == 0
    names = sorted(n for n in os.listdir(folder) if n.endswith(".tif"))
    assert names == ["20210601T100000Z.tif", "20210607T100000Z.tif", "20210613T103015Z.tif"]
    for name, single in zip(names, single_maps):
        with rasterio.open(os.path.join(folder, name)) as a, rasterio.open(single) as b:
            assert np.array_equal(a.read(1), b.read(1), equal_nan=True)
            assert a.tags()["time"] == b.tags()["time"] and a.transform == b.transform


def test_scene_times_come_from_names_tiff_tags_and_stac_items(tmp_path):
    import json

    import rasterio

    from transforms.mapping.scene import SceneError
    from transforms.mapping.scene.times import parse_time, scene_time

    folder = tmp_path / "plain"
    make_scene(SceneConfig(str(folder), 64, 64, seed=1))
    with pytest.raises(SceneError, match="has no time"):
        scene_time(str(folder))
    tifs = sorted(folder.glob("*.tif"))
    for path in tifs:
        with rasterio.open(path, "r+") as ds:
            ds.update_tags(TIFFTAG_DATETIME="2021:06:01 10:00:05")
    assert scene_time(str(folder)) == np.datetime64("2021-06-01T10:00:05")
    with rasterio.open(tifs[0], "r+") as ds:
        ds.update_tags(TIFFTAG_DATETIME="2021:06:02 10:00:05")
    with pytest.raises(SceneError, match="different times"):
        scene_time(str(folder))
    items = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "stac_version": "1.0.0", "id": f"i{k}", "bbox": [0, 0, 1, 1],
         "geometry": {"type": "Point", "coordinates": [0, 0]}, "links": [], "assets": {},
         "properties": {"datetime": "2021-06-01T12:00:00+02:00"}} for k in range(2)]}
    stac = tmp_path / "items.json"
    stac.write_text(json.dumps(items))
    assert scene_time(str(stac)) == np.datetime64("2021-06-01T10:00:00")
    assert scene_time(str(tmp_path / "s_2020-02-29T23:59.json")) == np.datetime64(
        "2020-02-29T23:59")
    assert scene_time(str(tmp_path / "s_2021-06-01T10:00Z")) == np.datetime64("2021-06-01T10:00")
    for name, words in (("s_2021-06-01T10:00+02:00", "UTC offset"),
                        ("s_2021-06-01T10:00:00.750", "fraction"),
                        ("a_2021-06-01T10:00_to_2021-06-02T10:00", "holds 2 times")):
        with pytest.raises(SceneError, match=words):
            scene_time(str(tmp_path / name))
    glued = tmp_path / "x12021-06-01T10:00"  # a time inside a longer number is none
    make_scene(SceneConfig(str(glued), 64, 64, seed=1))
    with pytest.raises(SceneError, match="has no time"):
        scene_time(str(glued))
    with rasterio.open(tifs[1], "r+") as ds:
        ds.update_tags(TIFFTAG_DATETIME="2021:13:45 12:00:00")
    with pytest.raises(SceneError, match=f"{tifs[1].name} has TIFFTAG_DATETIME .* no date"):
        scene_time(str(folder))
    with pytest.raises(SceneError, match="not a valid time"):
        scene_time(str(tmp_path / "s_2021-02-30T10:00"))
    assert parse_time("2021-06-01T10:00Z") == np.datetime64("2021-06-01T10:00")


def test_a_killed_appends_leftovers_and_a_held_lock_never_reach_the_cube(series, cube, tmp_path,
                                                                        capfd):
    import rasterio
    import xarray

    root, model = series
    out = str(tmp_path / "c.zarr")
    flags = ["--exported_model_dir", model, *MAP_FLAGS]
    shutil.copytree(cube, out)
    later = tmp_path / "scene_2021-07-01T10:00"  # its first column of tiles all NaN
    make_scene(SceneConfig(str(later), HEIGHT, WIDTH, seed=7, nodata_box=(0, HEIGHT, 0, 160)))
    before = tree(out)
    open(os.path.join(out, ".append-lock"), "w").close()
    code, said = predict(["--scene_path", str(later), "--append", "--output_path", out, *flags],
                         capfd)
    assert code == 1 and "another --append is committing" in said.err
    os.remove(os.path.join(out, ".append-lock"))
    assert tree(out) == before
    for name in ("soil_moisture", "smap_sm", "gldas_sm"):  # what a killed append left
        for chunk in os.listdir(os.path.join(out, name)):
            if chunk.startswith("2."):
                shutil.copy(os.path.join(out, name, chunk),
                            os.path.join(out, name, "3." + chunk[2:]))
    assert predict(["--scene_path", str(later), "--append", "--output_path", out, *flags])[0] == 0
    single = str(tmp_path / "single.tif")
    assert predict(["--scene_path", str(later), "--output_path", single, *flags])[0] == 0
    with rasterio.open(single) as ds:
        expected = ds.read(1)
    got = xarray.open_zarr(out).soil_moisture.values[3]
    assert np.isnan(expected[:, :4]).all() and np.array_equal(got, expected, equal_nan=True)


def test_a_literal_folder_with_glob_characters_is_one_scene(series, tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines import predict_map
    from transforms.mapping import MapConfig

    root, model = series
    folder = tmp_path / "site[1]" / "scene"
    shutil.copytree(root / "scenes" / f"scene_{TIMES[0]}", folder)
    options = PipelineOptions(["--scene_path", str(folder), "--exported_model_dir", model,
                               "--output_path", str(tmp_path / "m.tif")])
    for cls in predict_map.OPTION_CLASSES:
        options.view_as(cls)
    assert MapConfig.from_options(options).output_kind == "map"


def test_a_cube_job_builds_for_dataflow_offline(series):
    from pipelines import predict_map

    root, model = series
    r = predict_map.run(["--scene_path", scenes_glob(root), "--exported_model_dir", model,
                         "--output_path", "gs://my-bucket-123/cubes/c.zarr", *MAP_FLAGS,
                         "--runner", "DataflowRunner", "--project", "my-project-123",
                         "--region", "us-central1", "--temp_location", "gs://my-bucket-123/tmp",
                         "--dry_run=True", "--no_auth", "--sdk_location=container"])
    assert r["dry_run"] and any(n.startswith("Write chunks") for n in r["transforms"])
    assert any(n.startswith("Predict maps/Run model") for n in r["transforms"])
