"""Bands in their own units and files (issue #30): the encoding file, band
folders (the mosaic rule), ``--grid_like``, and the one-line refusals.

The end-to-end checks compare maps of one scene written two ways (integers
on the grid, and floats in other units with the encoding that undoes them,
or split into a band folder): the maps must be equal bit for bit. The
resampling rule itself is restated independently in ``test_map_native``.
"""

import json
import os
import shutil

import numpy as np
import pytest

from transforms.mapping.geometry import Region
from transforms.mapping.scene import (Encoding, SceneError, parse_encoding, read_region,
                                      read_scene)
from transforms.runtime.errors import UsageError
from transforms.synthetic.scene import SceneConfig, make_scene

SIDE, STRIDE = 320, 64


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("sources") / "scene")
    make_scene(SceneConfig(folder, SIDE, SIDE, seed=5, nodata_box=(40, 90, 200, 260)))
    return folder


@pytest.fixture
def folder(base, tmp_path):
    out = str(tmp_path / "scene")
    shutil.copytree(base, out)
    return out


def band(folder, name):
    return os.path.join(folder, f"{name}.tif")


def write_like(path, like, data, **changes):
    """A GeoTIFF at ``path`` with ``like``'s profile, ``changes`` and ``data``."""
    import rasterio

    with rasterio.open(like) as ds:
        profile = dict(ds.profile)
    profile.update(changes, count=1)
    if os.path.exists(path):
        os.remove(path)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.asarray(data).astype(profile["dtype"]), 1)


def read(path):
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read(1)


def map_of(folder, model, out, *flags):
    """predict_map in this process; returns ``(exit code, map values)``."""
    from pipelines import predict_map

    rc = predict_map.main(["--scene_path", folder, "--exported_model_dir", model,
                           "--output_path", out, "--stride", str(STRIDE), "--edge_mode", "pad",
                           *flags])
    return rc, (read(out) if rc == 0 else None)


@pytest.fixture(scope="module")
def base_map(base, reference_model, tmp_path_factory):
    rc, values = map_of(base, reference_model, str(tmp_path_factory.mktemp("m") / "map.tif"))
    assert rc == 0 and np.isfinite(values).sum() >= 10 and np.isnan(values).any()
    return values


# the encoding file

@pytest.mark.parametrize("content,words", [
    ("not json", "is not JSON"),
    ("[]", "must hold an object of bands"),
    ('{"sentinel_3": {"scale": 1, "offset": 0, "min": 0, "max": 1}}', "'sentinel_3' is no band"),
    ('{"sentinel_1_VV": 5}', "sentinel_1_VV must be an object"),
    ('{"sentinel_1_VV": {"scale": 1, "ofset": 0, "min": 0, "max": 1}}',
     "unknown ofset; missing offset"),
    ('{"sentinel_1_VV": {"scale": 0, "offset": 0, "min": 0, "max": 1}}', "scale is 0"),
    ('{"sentinel_1_VV": {"scale": NaN, "offset": 0, "min": 0, "max": 1}}', "not a finite number"),
    ('{"sentinel_1_VV": {"scale": "10", "offset": 0, "min": 0, "max": 1}}', "not a number"),
    ('{"sentinel_1_VV": {"scale": 1, "offset": 0, "min": 5, "max": 1}}', "min 5 is above max 1"),
    ('{"sentinel_1_VV": {"scale": 1, "offset": 0, "min": 0.5, "max": 1}}', "are integers"),
    ('{"sentinel_1_VV": {"scale": 1, "offset": 0, "min": 0, "max": 1e20}}', "beyond ±2^53"),
    ('{"sentinel_1_VV": {"scale": 1' + "0" * 400 + ', "offset": 0, "min": 0, "max": 1}}',
     "too large a number"),
    ('{"sentinel_1_VV": {"scale": 1, "offset": 0, "min": 0, "max": 1}, '
     '"sentinel_1_VV": {"scale": 2, "offset": 0, "min": 0, "max": 1}}', "given twice"),
    ('{"sentinel_1_VV": {"scale": 10, "scale": 1, "offset": 0, "min": 0, "max": 1}}',
     "'scale' is given twice"),
])
def test_a_wrong_encoding_file_is_one_line_naming_the_file_and_band(content, words):
    with pytest.raises(UsageError) as e:
        parse_encoding("enc.json", content)
    message = str(e.value)
    assert "\n" not in message and "enc.json" in message and words in message, message


def test_an_encoding_rounds_half_up_and_clips_in_float64():
    enc = parse_encoding("e", '{"nasa_dem_elevation": {"scale": 1, "offset": 0, "min": 0, '
                              '"max": 3000}}')["nasa_dem_elevation"]
    assert enc == Encoding(1.0, 0.0, 0, 3000) and enc.dtype == np.int16
    got = enc.apply(np.array([0.49999, 0.5, 1.5, -2.5, -0.2, 2999.6, 1e9]))
    assert got.tolist() == [0, 1, 2, 0, 0, 3000, 3000]
    wide = Encoding(10000.0, 1000.0, 0, 100000)
    assert wide.dtype == np.int32 and wide.apply(np.array([0.25])).tolist() == [3500]


# bands in their own units: the map is the integer scene's

def test_float_bands_with_the_encoding_that_undoes_them_give_the_same_map(
        base, folder, base_map, reference_model, tmp_path):
    vv = read(band(base, "sentinel_1_VV")).astype(np.float64)
    db = np.where(vv == -32768, np.nan, (vv - 200) / 10)  # "dB": the encoding is x 10 + 200
    write_like(band(folder, "sentinel_1_VV"), band(base, "sentinel_1_VV"), db,
               dtype="float32", nodata=None)
    dem = read(band(base, "nasa_dem_elevation")).astype(np.float64) + 0.3  # metres, not whole
    write_like(band(folder, "nasa_dem_elevation"), band(base, "nasa_dem_elevation"), dem,
               dtype="float32")
    smap = read(band(base, "smap_sm")).astype(np.float64)
    write_like(band(folder, "smap_sm"), band(base, "smap_sm"), smap / 255, dtype="float32")
    encoding = {"sentinel_1_VV": {"scale": 10, "offset": 200, "min": -32768, "max": 32767},
                "nasa_dem_elevation": {"scale": 1, "offset": -0.3, "min": -500, "max": 9000},
                "smap_sm": {"scale": 255, "offset": 0, "min": 0, "max": 255}}
    path = str(tmp_path / "encoding.json")
    json.dump(encoding, open(path, "w"))
    out = str(tmp_path / "out" / "map.tif")
    rc, values = map_of(folder, reference_model, out, "--encoding", path)
    assert rc == 0
    np.testing.assert_array_equal(values, base_map)  # NaN where NaN, every value equal
    summary = json.load(open(out[:-4] + ".summary.json"))
    assert summary["encoding"]["sentinel_1_VV"] == {"scale": 10.0, "offset": 200.0,
                                                    "min": -32768, "max": 32767}
    import rasterio

    with rasterio.open(out) as ds:
        assert json.loads(ds.tags()["encoding"]) == summary["encoding"]
    # without the encoding the float band is refused, naming the file and the flag
    rc, _ = map_of(folder, reference_model, str(tmp_path / "no" / "map.tif"))
    assert rc == 1


def test_a_wrong_encoding_file_exits_2_before_anything_runs(folder, reference_model, tmp_path,
                                                            capfd):
    path = str(tmp_path / "encoding.json")
    open(path, "w").write('{"sentinel_1_VV": {"scale": 0, "offset": 0, "min": 0, "max": 1}}')
    out = tmp_path / "out" / "map.tif"
    rc, _ = map_of(folder, reference_model, str(out), "--encoding", path)
    err = [line for line in capfd.readouterr().err.splitlines() if "error" in line]
    assert rc == 2 and len(err) == 1 and path in err[0] and "scale is 0" in err[0]
    assert not out.exists()


# band folders: the mosaic rule

def test_a_band_folder_is_mosaicked_first_file_first(folder):
    name = "sentinel_2_B8"
    whole = read(band(folder, name))
    os.makedirs(os.path.join(folder, name))
    first, second = whole.copy(), whole.copy() + 1
    first[:, 200:] = -32768  # a hole the second file fills (with its own, other values)
    first[10:20, 10:20] = -32768
    write_like(os.path.join(folder, name, "a.tif"), band(folder, name), first)
    write_like(os.path.join(folder, name, "b.tif"), band(folder, name), second)
    os.remove(band(folder, name))
    found = read_scene(folder)
    assert [os.path.basename(f.path) for f in found.bands[name].files] == ["a.tif", "b.tif"]
    values, nodata = read_region(found.bands[name], found.grid, Region(0, 0, SIDE, SIDE))
    expected = np.where(first != -32768, first, second)
    assert not nodata.any() and np.array_equal(values, expected)


def test_a_band_in_a_file_and_a_folder_is_refused(folder):
    os.makedirs(os.path.join(folder, "sentinel_2_B8"))
    shutil.copy(band(folder, "sentinel_2_B8"), os.path.join(folder, "sentinel_2_B8", "a.tif"))
    with pytest.raises(SceneError, match="band sentinel_2_B8 is also in"):
        read_scene(folder)


# --grid_like

def test_grid_like_a_geotiff_on_the_scene_grid_gives_the_same_map(base, base_map,
                                                                  reference_model, tmp_path):
    like = str(tmp_path / "grid.tif")
    shutil.copy(band(base, "sentinel_2_B2"), like)
    rc, values = map_of(base, reference_model, str(tmp_path / "o" / "map.tif"),
                        "--grid_like", like)
    assert rc == 0 and np.array_equal(values, base_map, equal_nan=True)


@pytest.mark.parametrize("flags,rc,words", [
    (["--grid_like", "sentinel_9"], 2, "neither a band of the model"),
    (["--grid_like", "missing.tif"], 2, "nor a GeoTIFF (.tif) that exists"),
    (["--resampling", "cubic"], 2, "invalid choice"),
])
def test_grid_flags_wrong_exit_2(base, reference_model, tmp_path, capfd, flags, rc, words):
    got, _ = map_of(base, reference_model, str(tmp_path / "o" / "map.tif"), *flags)
    err = capfd.readouterr().err
    assert got == rc and words in err, err


def test_grid_like_a_mosaicked_band_is_refused(folder, reference_model, tmp_path, capfd):
    name = "sentinel_2_B8"
    os.makedirs(os.path.join(folder, name))
    for n in ("a.tif", "b.tif"):
        shutil.copy(band(folder, name), os.path.join(folder, name, n))
    os.remove(band(folder, name))
    rc, _ = map_of(folder, reference_model, str(tmp_path / "o" / "map.tif"), "--grid_like", name)
    err = [line for line in capfd.readouterr().err.splitlines() if "error" in line]
    assert rc == 1 and len(err) == 1 and "mosaicked from 2 files" in err[0]


# what a hostile probe found (each once silently wrong or destructive)

def test_a_float_band_read_raw_off_the_grid_keeps_its_values(folder):
    """To fit an encoding the scene is read raw: a float band resampled onto
    the grid must not be rounded to integers on the way."""
    from affine import Affine

    vv = read(band(folder, "sentinel_1_VV")).astype(np.float64) / 7  # not whole
    write_like(band(folder, "sentinel_2_B8"), band(folder, "sentinel_1_VV"), vv,
               dtype="float32", nodata=None, transform=Affine(10, 0, 500000 - 30, 0, -10,
                                                               5300000 + 20))
    found = read_scene(folder, raw=True)
    assert found.resampled() == ["sentinel_2_B8"]
    values, nodata = read_region(found.bands["sentinel_2_B8"], found.grid,
                                 Region(0, 0, SIDE - 2, SIDE - 3))
    assert not nodata.any()
    np.testing.assert_array_equal(values, vv.astype(np.float32)[2:, 3:])


def test_a_file_named_for_another_band_in_a_band_folder_is_refused(folder):
    os.makedirs(os.path.join(folder, "sentinel_2_B4"))
    shutil.move(band(folder, "sentinel_2_B4"), os.path.join(folder, "sentinel_2_B4", "a.tif"))
    shutil.copy(band(folder, "sentinel_2_B3"),
                os.path.join(folder, "sentinel_2_B4", "sentinel_2_B3.tif"))
    with pytest.raises(SceneError, match="named for band sentinel_2_B3 but lies in the folder"):
        read_scene(folder)


def test_files_of_one_band_storing_values_differently_are_refused(folder):
    name = "sentinel_2_B8"
    os.makedirs(os.path.join(folder, name))
    whole = read(band(folder, name))
    write_like(os.path.join(folder, name, "a.tif"), band(folder, name), whole)
    write_like(os.path.join(folder, name, "b.tif"), band(folder, name), whole,
               dtype="float32")
    os.remove(band(folder, name))
    encoding = parse_encoding("e", '{"sentinel_2_B8": {"scale": 1, "offset": 0, "min": 0, '
                                   '"max": 1000}}')
    with pytest.raises(SceneError, match="must store its values alike"):
        read_scene(folder, encoding=encoding)


def test_a_band_that_does_not_reach_the_map_grid_is_refused_before_the_model_loads(
        folder, reference_model, tmp_path, capfd, monkeypatch):
    """A DEM labelled with the wrong CRS lies elsewhere: every map pixel
    would be NaN; said at once, naming the band."""
    from rasterio.crs import CRS

    from model_runner import windows

    dem = band(folder, "nasa_dem_elevation")
    write_like(dem, dem, read(dem), crs=CRS.from_epsg(32610))  # 3,000 km west
    monkeypatch.setattr(windows, "load_session", lambda *a, **k: pytest.fail("model loaded"))
    rc, _ = map_of(folder, reference_model, str(tmp_path / "o" / "map.tif"))
    err = [line for line in capfd.readouterr().err.splitlines() if "error" in line]
    assert rc == 1 and len(err) == 1 and "nasa_dem_elevation does not reach" in err[0], err


@pytest.mark.parametrize("where", ["band folder", "grid_like", "encoding"])
def test_an_output_that_a_later_run_would_read_is_refused(folder, reference_model, tmp_path,
                                                          capfd, where):
    os.makedirs(os.path.join(folder, "sentinel_2_B8"))
    shutil.move(band(folder, "sentinel_2_B8"), os.path.join(folder, "sentinel_2_B8", "a.tif"))
    like = str(tmp_path / "grid.tif")
    shutil.copy(band(folder, "sentinel_1_VV"), like)
    encoding = str(tmp_path / "enc.tif")  # a misnamed encoding file is an input all the same
    open(encoding, "w").write('{"sentinel_1_VH": {"scale": 1, "offset": 0, "min": -32768, '
                              '"max": 32767}}')
    out = {"band folder": os.path.join(folder, "sentinel_2_B8", "map.tif"),
           "grid_like": like, "encoding": encoding}[where]
    before = open(out, "rb").read() if os.path.exists(out) else None
    rc, _ = map_of(folder, reference_model, out, "--grid_like", like, "--encoding", encoding)
    err = [line for line in capfd.readouterr().err.splitlines() if "error" in line]
    assert rc == 2 and len(err) == 1, err
    assert (open(out, "rb").read() if os.path.exists(out) else None) == before


def test_a_map_grid_not_of_10_m_pixels_is_said(base, reference_model, tmp_path, capfd):
    from affine import Affine

    like = str(tmp_path / "grid20.tif")
    write_like(like, band(base, "sentinel_1_VV"), np.zeros((SIDE // 2, SIDE // 2)),
               width=SIDE // 2, height=SIDE // 2, transform=Affine(20, 0, 500000, 0, -20,
                                                                  5300000))
    map_of(base, reference_model, str(tmp_path / "o" / "map.tif"), "--grid_like", like,
           "--stride", "4")
    err = capfd.readouterr().err  # (its windows all hold the cloud: nothing predicted, rc 1)
    assert "predict_map: WARNING: the map's grid has 20 m pixels" in err, err


def test_an_encoding_that_flattens_a_band_is_said(base, folder, reference_model, tmp_path,
                                                   capfd):
    vv = read(band(base, "sentinel_1_VV")).astype(np.float64)
    write_like(band(folder, "sentinel_1_VV"), band(base, "sentinel_1_VV"), (vv - 200) / 10,
               dtype="float32", nodata=None)
    path = str(tmp_path / "encoding.json")
    for scale, said in ((10, False), (1000, True)):  # x 1000: nearly every value clips
        json.dump({"sentinel_1_VV": {"scale": scale, "offset": 200, "min": 0, "max": 255}},
                  open(path, "w"))
        map_of(folder, reference_model, str(tmp_path / f"o{scale}" / "map.tif"),
               "--encoding", path)
        lines = [line for line in capfd.readouterr().err.splitlines()
                 if "WARNING: band sentinel_1_VV encodes" in line]
        assert len(lines) == int(said), lines
