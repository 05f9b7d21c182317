"""The native sample scene (``transforms.synthetic.native``): every band on
its product's grid, in its units and type, Sentinel-2 split over two
overlapping tiles; its encoding file brings each band into the ranges the
generated examples hold; its STAC ItemCollection names the same files; and
it maps with the demo's command (``--encoding``), from the folder and from
``items.json``, with ``make_sample_data --native_scene_size``.
"""

import json
import os

import numpy as np
import pytest

from transforms.dataset import schema
from transforms.synthetic import native
from transforms.synthetic.native import NativeConfig, make_native_scene

SIZE, STRIDE = 512, 64
CLOUD = (300, 340, 400, 440)  # map-grid rows r0:r1, columns c0:c1: nodata in B4
S2_10M = ("sentinel_2_B4", "sentinel_2_B3", "sentinel_2_B2", "sentinel_2_B8")
S2_20M = ("sentinel_2_B11", "sentinel_2_B12")
TILES = ("T33UWP", "T33UXP")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("native") / "scene")
    make_native_scene(NativeConfig(folder, SIZE, seed=2, cloud=CLOUD))
    return folder


def opened(path):
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read(1), ds.crs, ds.transform, ds.dtypes[0], ds.nodata, ds.units[0]


def files(folder, name):
    return ([os.path.join(folder, name, f"{t}.tif") for t in TILES] if name.startswith(
        "sentinel_2_") else [os.path.join(folder, f"{name}.tif")])


def test_each_band_is_on_its_products_grid_in_its_units_and_type(scene):
    from pyproj import CRS

    vv, crs, grid, dtype, nodata, unit = opened(files(scene, "sentinel_1_VV")[0])
    assert crs.to_epsg() == 32633 and vv.shape == (SIZE, SIZE) and (grid.a, grid.e) == (10, -10)
    expected = {  # band: (CRS, dtype, unit, pixel size, value range in its units)
        "sentinel_1_VV": ("EPSG:32633", "float32", "dB", 10, (-25, -1)),
        "sentinel_1_VH": ("EPSG:32633", "float32", "dB", 10, (-28, -8)),
        "sentinel_1_angle": ("EPSG:32633", "float32", "degree", 10, (29, 46)),
        **{b: ("EPSG:32633", "uint16", "reflectance*10000+1000", 10, (1000, 6000))
           for b in S2_10M},
        **{b: ("EPSG:32633", "uint16", "reflectance*10000+1000", 20, (1000, 6000))
           for b in S2_20M},
        "nasa_dem_elevation": ("EPSG:4326", "float32", "m", 1 / 3600, (100, 700)),
        "soil_grids_sand_sand_0-5cm_mean": ("ESRI:54052", "int16", "g/kg", 250, (0, 1000)),
        "soil_grids_silt_silt_0-5cm_mean": ("ESRI:54052", "int16", "g/kg", 250, (0, 1000)),
        "soil_grids_clay_clay_0-5cm_mean": ("ESRI:54052", "int16", "g/kg", 250, (0, 1000)),
        "soil_grids_bd_bdod_0-5cm_mean": ("ESRI:54052", "int16", "cg/cm3", 250, (80, 200)),
        "smap_sm": ("EPSG:6933", "float32", "m3/m3", 9008.055210146, (0.02, 0.6)),
        "gldas_sm": ("EPSG:4326", "float32", "kg/m2", 0.25, (2, 50)),
    }
    assert set(expected) == set(native.ENCODINGS) == {*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS,
                                                      schema.SMAP_SM, schema.GLDAS_SM}
    for name, (want_crs, want_dtype, want_unit, pixel, (low, high)) in expected.items():
        for path in files(scene, name):
            values, crs, transform, dtype, nodata, unit = opened(path)
            assert CRS.from_wkt(crs.to_wkt()) == CRS.from_user_input(want_crs), (name, crs)
            assert (dtype, unit) == (want_dtype, want_unit), name
            assert transform.a == pytest.approx(pixel, rel=1e-12) and transform.e < 0, name
            assert transform.b == transform.d == 0, name
            held = values[np.isfinite(values)] if dtype.startswith("float") else values
            held = held[held != nodata] if nodata is not None and np.isfinite(nodata) else held
            assert held.size and low <= held.min() and held.max() <= high, (name, path)
    # SoilGrids' texture sums to 1000 g/kg (to rounding), as the product's
    parts = [opened(files(scene, f"soil_grids_{b}_0-5cm_mean")[0])[0].astype(int)
             for b in ("sand_sand", "silt_silt", "clay_clay")]
    assert np.abs(sum(parts) - 1000).max() <= 1


def test_sentinel_1_vh_and_angle_lie_on_a_larger_shifted_grid_of_the_same_lattice(scene):
    _, _, vv, *_ = opened(files(scene, "sentinel_1_VV")[0])
    for name in ("sentinel_1_VH", "sentinel_1_angle"):
        values, _, grid, *_ = opened(files(scene, name)[0])
        assert values.shape[0] > SIZE and values.shape[1] > SIZE
        shift = ((grid.c - vv.c) / 10, (grid.f - vv.f) / 10)
        assert shift != (0, 0) and all(float(s).is_integer() for s in shift)
        assert grid.c < vv.c and grid.f > vv.f  # it covers the map grid


def test_sentinel_2_is_split_over_two_overlapping_tiles_in_band_folders(scene):
    _, _, vv, *_ = opened(files(scene, "sentinel_1_VV")[0])
    west_edge, east_edge = vv.c, vv.c + 10 * SIZE
    for name in (*S2_10M, *S2_20M):
        assert sorted(os.listdir(os.path.join(scene, name))) == [f"{t}.tif" for t in TILES]
        (a, _, ga, _, nodata, _), (b, _, gb, *_) = (opened(p) for p in files(scene, name))
        assert nodata == 0
        shift = ((ga.c - vv.c) / 10) % 1, ((ga.f - vv.f) / 10) % 1
        assert 0 < shift[0] < 1 and 0 < shift[1] < 1  # Sentinel-2's own lattice
        assert ((gb.c - ga.c) / ga.a).is_integer() and gb.f == ga.f  # one lattice, one extent N-S
        a_east, b_west = ga.c + ga.a * a.shape[1], gb.c
        assert ga.c < west_edge < b_west < a_east < east_edge < gb.c + gb.a * b.shape[1]
        # in the overlap the tiles hold the same pixels, where both hold one
        k = int(round((b_west - ga.c) / ga.a))
        left, right = a[:, k:], b[:, :a.shape[1] - k]
        both = (left > 0) & (right > 0)
        assert both.sum() > 0.5 * both.size and np.array_equal(left[both], right[both])
        gap = left == 0  # the first tile's: the second fills it (B4's cloud is in both)
        assert gap.any() and (name == "sentinel_2_B4" or (right[gap] > 0).all())


def test_the_encoding_brings_every_band_into_the_generated_examples_ranges(scene):
    from transforms.mapping.geometry import Region
    from transforms.mapping.scene import read_encoding, read_region, read_scene

    encoding = read_encoding(os.path.join(scene, "encoding.json"))
    assert {n: e.as_dict() for n, e in encoding.items()} == native.ENCODINGS
    found = read_scene(scene, encoding=encoding)
    assert found.resampled() == [n for n in (*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS)
                                 if n != "sentinel_1_VV"]
    # the ranges the generated examples hold (transforms/synthetic/examples.py)
    ranges = {"sentinel_1_VV": (35, 230), "sentinel_1_VH": (20, 160),
              "sentinel_1_angle": (90, 160), **{b: (5, 200) for b in (*S2_10M, *S2_20M)},
              "nasa_dem_elevation": (50, 2500), "soil_grids_sand_sand_0-5cm_mean": (150, 700),
              "soil_grids_silt_silt_0-5cm_mean": (50, 650),
              "soil_grids_clay_clay_0-5cm_mean": (50, 500),
              "soil_grids_bd_bdod_0-5cm_mean": (80, 180)}
    region, carried, bad = Region(0, 0, SIZE, SIZE), {}, np.zeros((SIZE, SIZE), bool)
    for name, (low, high) in ranges.items():
        values, nodata = read_region(found.bands[name], found.grid, region, carried)
        held = values[~nodata]
        assert low <= np.percentile(held, 0.5) and np.percentile(held, 99.5) <= high, name
        bad |= nodata
    # nodata: the cloud alone (to a pixel at its edges); the first tile's gap is filled
    r0, r1, c0, c1 = CLOUD
    assert not bad[:r0 - 1].any() and not bad[r1 + 1:].any()
    assert not bad[:, :c0 - 1].any() and not bad[:, c1 + 1:].any()
    assert bad[r0 + 1:r1 - 1, c0 + 1:c1 - 1].all()
    for name, (low, high) in ((schema.SMAP_SM, (0.02, 0.6)), (schema.GLDAS_SM, (2, 50))):
        rows, cols = np.meshgrid(np.arange(0, SIZE, 16) + 0.5, np.arange(0, SIZE, 16) + 0.5)
        from transforms.mapping.scene import values_at

        got = values_at(found.aux[name], found.grid, rows, cols)
        assert not got.missing.any()
        encoded = found.aux[name].encoding.apply(got.values)
        assert 20 <= encoded.min() and encoded.max() <= 236, name  # the examples' 20-235


def test_the_item_collection_names_the_same_files(scene):
    import pystac

    path = os.path.join(scene, "items.json")
    collection = pystac.ItemCollection.from_file(path)
    hrefs = {}
    for item in collection:
        for key, asset in item.assets.items():
            hrefs.setdefault(key, []).append(asset.href)
            assert not os.path.isabs(asset.href) and os.path.isfile(
                os.path.join(scene, asset.href)), asset.href
    assert set(hrefs) == set(native.ENCODINGS)
    for name, paths in hrefs.items():
        assert [os.path.join(scene, h) for h in paths] == files(scene, name), name
    s2 = [i for i in collection if i.properties.get("constellation") == "sentinel-2"]
    assert sorted(i.properties["s2:mgrs_tile"] for i in s2) == ["33UWP", "33UXP"]
    assert all(set(i.assets) == {*S2_10M, *S2_20M} for i in s2)
    assert len(collection) == 7  # Sentinel-1, two tiles, NASADEM, SoilGrids, SMAP, GLDAS
    json.dumps(collection.to_dict())  # serialisable as it is


@pytest.mark.parametrize("source", ["folder", "items.json"])
def test_the_native_scene_maps_with_the_demo_command(scene, reference_model, tmp_path, source):
    import rasterio

    from pipelines import predict_map

    scene_path = scene if source == "folder" else os.path.join(scene, "items.json")
    out = str(tmp_path / "map.tif")
    summary = predict_map.run(["--scene_path", scene_path, "--encoding",
                               os.path.join(scene, "encoding.json"), "--exported_model_dir",
                               reference_model, "--output_path", out, "--stride", str(STRIDE)])
    side = SIZE // STRIDE
    centres = np.arange(side) * STRIDE + STRIDE // 2
    centres = centres[(centres >= 128) & (centres + 128 <= SIZE)]  # 256-pixel windows inside
    inside = len(centres)

    def meet(low, high, slack):  # windows (rows or columns) that meet [low, high)
        return int(sum((c - 128 < high + slack) and (c + 128 > low - slack) for c in centres))

    clouded = [meet(CLOUD[0], CLOUD[1], s) * meet(CLOUD[2], CLOUD[3], s) for s in (-1, 1)]
    assert summary["nodata"]["outside_scene"] == side * side - inside * inside
    assert 1 <= clouded[0] <= summary["nodata"]["band_nodata"] <= clouded[1] < inside * inside
    assert summary["predicted"] + summary["nodata"]["band_nodata"] == inside * inside
    assert not any(v for k, v in summary["nodata"].items()
                   if k not in ("outside_scene", "band_nodata"))
    with rasterio.open(out) as ds, rasterio.open(files(scene, "sentinel_1_VV")[0]) as vv:
        assert ds.crs == vv.crs and ds.transform == vv.transform @ vv.transform.scale(STRIDE)
        values = ds.read(1)
    assert np.isfinite(values).sum() == summary["predicted"]
    if source == "items.json":  # the same map as from the folder
        again = str(tmp_path / "folder.tif")
        predict_map.run(["--scene_path", scene, "--encoding",
                         os.path.join(scene, "encoding.json"), "--exported_model_dir",
                         reference_model, "--output_path", again, "--stride", str(STRIDE)])
        with rasterio.open(again) as ds:
            np.testing.assert_array_equal(ds.read(1), values)


def test_make_sample_data_writes_the_native_scene(tmp_path, capsys):
    from pipelines import make_sample_data

    out = tmp_path / "sample"
    make_sample_data.run(["--output_dir", str(out), "--num_shards", "1", "--examples_per_shard",
                          "1", "--image_size", "4", "--ismn_days", "10",
                          "--native_scene_size", "64"])
    folder = out / "native_scene"
    assert "wrote the native scene" in capsys.readouterr().out
    assert (folder / "encoding.json").is_file() and (folder / "items.json").is_file()
    assert sorted(os.listdir(folder / "sentinel_2_B11")) == [f"{t}.tif" for t in TILES]
    assert opened(str(folder / "sentinel_1_VV.tif"))[0].shape == (64, 64)
    assert not (out / "scene").exists()  # --scene_size not given
