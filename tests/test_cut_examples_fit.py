"""cut_examples --fit_encoding (issue 30, item 3): a scene in its own units
fitted against released examples gives back the encoding that made them.

A generated scene in the dataset's integers stands for the release: 16
examples of 64 x 64 cut from it tile it (the shards compared with). The
same scene is then written in other units (float32 dB = (int - 200) / 10,
reflectance = int * 10 + 1000, ...), so each band's true encoding is known,
and one band of the "release" is clipped (saturated at both ends). The
commands run in this process (``main(argv)``, ``predict_map.run``)."""

import json
import os
import shutil

import numpy as np
import pytest

from pipelines import cut_examples
from transforms.mapping.fit import ValueSums, fit_band
from transforms.mapping.scene import parse_encoding
from transforms.runtime import UsageError
from transforms.synthetic.scene import SceneConfig, make_scene

SIDE, CUT = 256, 64
WHEN = "2021-06-01T10:30:00Z"
CLIPPED, CLIP = "sentinel_2_B8", (65, 95)  # the release's B8 saturates at 65 and 95
S2 = ("sentinel_2_B4", "sentinel_2_B3", "sentinel_2_B2", "sentinel_2_B8", "sentinel_2_B11",
      "sentinel_2_B12")
# band: (scale, offset, dtype of the scene's own units, int -> those units); the dataset's
# integer is scale * value + offset
TRUE = {
    "sentinel_1_VV": (10.0, 200.0, "float32", lambda v: (v - 200) / 10),  # dB
    "sentinel_1_VH": (10.0, 200.0, "float32", lambda v: (v - 200) / 10),
    "sentinel_1_angle": (4.0, 0.0, "float32", lambda v: v / 4),  # degrees
    **{b: (0.1, -100.0, "uint16", lambda v: v * 10 + 1000) for b in S2},  # reflectance
    "nasa_dem_elevation": (1.0, 0.0, "int16", lambda v: v),  # metres, as released
    "soil_grids_sand_sand_0-5cm_mean": (10.0, 0.0, "float32", lambda v: v / 10),  # %
    "soil_grids_silt_silt_0-5cm_mean": (1.0, 0.0, "int16", lambda v: v),
    "soil_grids_clay_clay_0-5cm_mean": (1.0, 0.0, "int16", lambda v: v),
    "soil_grids_bd_bdod_0-5cm_mean": (0.5, 10.0, "int16", lambda v: (v - 10) * 2),
    "smap_sm": (255.0, 0.0, "float32", lambda v: v / 255),  # m³/m³
    "gldas_sm": (2.0, -4.0, "float32", lambda v: v / 2 + 2),
}


def rewrite(path, out, convert, dtype):
    """``out``: the GeoTIFF ``path`` with its values ``convert``ed, as ``dtype``."""
    import rasterio

    with rasterio.open(path) as ds:
        profile, values = ds.profile, ds.read(1).astype(np.float64)
    nodata = {"float32": float("nan"), "uint16": 0}.get(dtype, profile["nodata"])
    profile.update(dtype=dtype, nodata=nodata)
    with rasterio.open(out, "w", **profile) as ds:
        ds.write(np.asarray(convert(values)).astype(dtype), 1)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """``(released scene, raw scene, shards' glob, far scene)``: the scene in
    the dataset's integers (B8 clipped) and in its own units, the 16 examples
    tiling the first, and a scene 100 km away."""
    import rasterio
    from pyproj import Transformer

    root = tmp_path_factory.mktemp("fit")
    released, raw, far = str(root / "released"), str(root / "raw"), str(root / "far")
    # fine SMAP/GLDAS pixels (about 40 x 55 m): each example's centre its own value
    make_scene(SceneConfig(released, SIDE, SIDE, seed=7, aux_degrees=0.0005))
    make_scene(SceneConfig(far, SIDE, SIDE, seed=2, origin=(600000.0, 5400000.0)))
    os.makedirs(raw)
    for band, (_, _, dtype, convert) in TRUE.items():
        path = os.path.join(released, f"{band}.tif")
        rewrite(path, os.path.join(raw, f"{band}.tif"), convert, dtype)
    clipped = os.path.join(released, f"{CLIPPED}.tif")
    rewrite(clipped, clipped + ".tmp", lambda v: np.clip(v, *CLIP), "int16")
    os.replace(clipped + ".tmp", clipped)
    with rasterio.open(clipped) as ds:
        transform, crs = ds.transform, ds.crs
    to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
    points = root / "points.csv"
    with open(points, "w") as f:
        f.write("sensor_id,lat,lon\n")
        for row in range(CUT // 2, SIDE, CUT):
            for col in range(CUT // 2, SIDE, CUT):
                lon, lat = to_lonlat.transform(*(transform @ (col, row)))
                f.write(f"NET__{row}_{col}__X,{lat!r},{lon!r}\n")
    shards = str(root / "shards")
    assert cut_examples.main(["--scene_path", released, "--points", str(points), "--timestamp",
                              WHEN, "--output_dir", shards, "--size", str(CUT)]) == 0
    return released, raw, os.path.join(shards, "*.tfrecord.gz"), far


def run(capfd, *argv):
    """``(exit status, stdout, the non-empty stderr lines)`` of the command."""
    rc = cut_examples.main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return rc, out, [line for line in err.splitlines() if line.strip()]


def one_line(rc, out, err, expected_rc):
    assert rc == expected_rc, (out, err)
    assert len(err) == 1 and err[0].startswith("cut_examples: error: "), err
    assert "run again with -v" not in err[0]  # a refusal, not an unforeseen failure
    return err[0]


@pytest.fixture(scope="module")
def fitted(release, tmp_path_factory):
    """``(encoding file, compare.json's content, stdout)`` of the fit."""
    _, raw, shards, _ = release
    out = tmp_path_factory.mktemp("fitted")
    path = out / "encoding.json"
    argv = ["--scene_path", raw, "--compare_with", shards, "--fit_encoding", str(path),
            "--output_dir", str(out / "check")]
    import io
    from contextlib import redirect_stdout

    printed = io.StringIO()
    with redirect_stdout(printed):
        assert cut_examples.main(argv) == 0
    return str(path), json.load(open(out / "check" / "compare.json")), printed.getvalue()


def test_the_fit_recovers_each_bands_encoding(fitted):
    path, compared, printed = fitted
    written = json.load(open(path))
    assert set(written) == set(TRUE)
    assert compared["examples"] == 16 and compared["poor"] == []
    assert "| band | scale | offset | r | residual | pixels |" in printed
    for band, (scale, offset, _, _) in TRUE.items():
        fit = written[band]
        assert set(fit) == {"scale", "offset", "min", "max", "r", "residual", "pixels"}
        assert fit["scale"] == pytest.approx(scale, rel=1e-6), band
        assert fit["offset"] == pytest.approx(offset, rel=1e-6, abs=1e-6 * scale), band
        assert fit["r"] == pytest.approx(1, abs=1e-9) and fit["residual"] < 1e-3, band
        assert compared["bands"][band]["pixels"] == fit["pixels"] > 0
    for band in ("smap_sm", "gldas_sm"):  # a value an example; the release's 0-255 scale
        assert (written[band]["min"], written[band]["max"]) == (0, 255)
        assert written[band]["pixels"] == 16


def test_saturated_pixels_are_left_out(fitted):
    path, compared, _ = fitted
    fit, seen = json.load(open(path))[CLIPPED], compared["bands"][CLIPPED]
    assert (fit["min"], fit["max"]) == CLIP  # the released range seen
    assert seen["saturated"] > 0.1 * 16 * CUT * CUT  # many pixels at the clip's ends
    assert fit["pixels"] + seen["saturated"] == 16 * CUT * CUT
    # and the fit stays exact (the saturated pairs lie off the line)
    assert fit["scale"] == pytest.approx(0.1, rel=1e-6) and fit["r"] == pytest.approx(1, abs=1e-9)


def test_the_fitted_file_maps_the_raw_scene_as_the_released_one(release, fitted,
                                                                 reference_model, tmp_path):
    import rasterio

    from pipelines import predict_map

    released, raw, _, _ = release
    maps = []
    for scene, extra in ((released, []), (raw, ["--encoding", fitted[0]])):
        out = str(tmp_path / f"{os.path.basename(scene)}.tif")
        predict_map.run(["--scene_path", scene, "--exported_model_dir", reference_model,
                         "--output_path", out, "--stride", str(CUT), "--edge_mode", "pad",
                         *extra])
        with rasterio.open(out) as ds:
            maps.append(ds.read(1))
    assert maps[0].shape == (SIDE // CUT, SIDE // CUT) and np.isfinite(maps[0]).all()
    np.testing.assert_array_equal(maps[0], maps[1])


def test_a_poor_fit_is_named_no_file_written_and_exit_1(release, tmp_path, capfd):
    _, raw, shards, _ = release
    scrambled = str(tmp_path / "scrambled")
    shutil.copytree(raw, scrambled)
    band = os.path.join(scrambled, "sentinel_2_B3.tif")
    rng = np.random.default_rng(0)
    rewrite(band, band + ".tmp", lambda v: rng.integers(1000, 3000, v.shape), "uint16")
    os.replace(band + ".tmp", band)
    path = tmp_path / "encoding.json"
    path.write_text("{}")  # an earlier run's: it would pass for this one's
    line = one_line(*run(capfd, "--scene_path", scrambled, "--compare_with", shards,
                         "--fit_encoding", path, "--output_dir", tmp_path / "check"), 1)
    assert "the fit is poor for 1 band (|r| below 0.99): sentinel_2_B3 r " in line, line
    assert "no affine map" in line and "sentinel_1_timestamp" in line and "not written" in line
    assert not path.exists()
    compared = json.load(open(tmp_path / "check" / "compare.json"))
    assert set(compared["bands"]) == set(TRUE) and compared["poor"][0].startswith("sentinel_2_B3")
    assert abs(compared["bands"]["sentinel_2_B3"]["r"]) < 0.1
    assert compared["bands"]["sentinel_2_B4"]["r"] == pytest.approx(1, abs=1e-9)
    # a lower threshold takes it
    rc, _, err = run(capfd, "--scene_path", scrambled, "--compare_with", shards,
                     "--fit_encoding", path, "--output_dir", tmp_path / "check",
                     "--fit_min_r", 0)
    assert rc == 0 and err == [] and path.exists()


def test_a_fit_that_compares_nothing_is_exit_1_naming_both_extents(release, tmp_path, capfd):
    _, _, shards, far = release
    path = tmp_path / "encoding.json"
    path.write_text("{}")
    line = one_line(*run(capfd, "--scene_path", far, "--compare_with", shards,
                         "--fit_encoding", path, "--output_dir", tmp_path / "check"), 1)
    assert f"the scene {far} spans lat 48." in line and "the 16 examples' centres span" in line
    assert not path.exists() and not (tmp_path / "check" / "compare.json").exists()


@pytest.mark.parametrize("argv,words", [
    (["--fit_encoding", "{fit}"], "--fit_encoding fits the scene against released examples: "
                                  "give --compare_with"),
    (["--compare_with", "{shards}", "--fit_encoding", "{fit}", "--encoding", "{fit}"],
     "leave out --encoding"),
    (["--compare_with", "{shards}", "--fit_min_r", "0.9"], "--fit_min_r is --fit_encoding's"),
    (["--compare_with", "{shards}", "--fit_encoding", "{fit}", "--fit_min_r", "1.5"],
     "--fit_min_r is a correlation between 0 and 1, not 1.5"),
    (["--compare_with", "{shards}", "--fit_encoding", "{fit}", "--fit_min_r", "nan"],
     "between 0 and 1, not nan"),
    (["--compare_with", "{shards}", "--fit_encoding", "{tmp}"], "is a folder"),
    (["--compare_with", "{shards}", "--fit_encoding", "{tmp}/no/such/e.json"],
     "its folder does not exist"),
])
def test_fit_flags_that_cannot_go_together_are_exit_2(release, tmp_path, capfd, argv, words):
    released, _, shards, _ = release
    points = tmp_path / "p.csv"
    points.write_text("sensor_id,lat,lon\nA,47.8,15.0\n")
    given = ["--scene_path", released, "--output_dir", tmp_path / "out"] + [
        a.format(fit=tmp_path / "e.json", shards=shards, tmp=tmp_path) for a in argv]
    if "--compare_with" not in argv:
        given += ["--points", points, "--timestamp", WHEN]
    line = one_line(*run(capfd, *given), 2)
    assert words in line, line
    assert not (tmp_path / "out").exists() and not (tmp_path / "e.json").exists()


def test_the_encoding_file_takes_a_fits_statistics_and_nothing_else():
    entry = {"scale": 10, "offset": 200, "min": 0, "max": 255}
    fitted = {**entry, "r": 0.9999, "residual": 0.29, "pixels": 65536}
    got = parse_encoding("e.json", json.dumps({"sentinel_1_VV": fitted}))
    assert got["sentinel_1_VV"].as_dict() == entry
    for key in ("ofset", "saturated"):
        with pytest.raises(UsageError, match=f"sentinel_1_VV: unknown {key}"):
            parse_encoding("e.json", json.dumps({"sentinel_1_VV": {**fitted, key: 1}}))


def test_the_streamed_fit_is_the_least_squares_fit_in_memory():
    rng = np.random.default_rng(1)
    x = rng.normal(5000.0, 40.0, 20000)  # a large mean, a small spread
    y = np.clip(np.floor(0.37 * x - 1500 + 0.5 + rng.normal(0, 2, x.size)), 340, 370)
    sums = ValueSums()
    for part in np.array_split(np.arange(x.size), 7):  # streamed in pieces
        sums.add(y[part], x[part])
    low, high = sums.seen()
    assert (low, high) == (340, 370)
    fit = fit_band(sums, low, high)
    kept = (y > low) & (y < high)
    scale, offset = np.polyfit(x[kept], y[kept], 1)
    residual = np.sqrt(np.mean((y[kept] - (scale * x[kept] + offset)) ** 2))
    assert fit["pixels"] == kept.sum() and fit["saturated"] == (~kept).sum() > 0
    assert fit["scale"] == pytest.approx(scale, rel=1e-9)
    assert fit["offset"] == pytest.approx(offset, rel=1e-9)
    assert fit["r"] == pytest.approx(np.corrcoef(x[kept], y[kept])[0, 1], rel=1e-9)
    assert fit["residual"] == pytest.approx(residual, rel=1e-9)
    wide, whole = ValueSums(), ValueSums()  # a span too wide to count directly: sorted
    far = (np.append(y, [-1e9, 1e9]), np.append(x, [1.0, 2.0]))
    whole.add(*far)
    wide.add(far[0][:100], far[1][:100])
    wide.add(far[0][100:], far[1][100:])
    assert np.array_equal(wide.keys, whole.keys) and np.allclose(wide.sums, whole.sums)
    constant = ValueSums()
    constant.add(np.array([1.0, 2.0, 3.0]), np.array([7.0, 7.0, 7.0]))
    assert fit_band(constant, 0, 9)["r"] is None and fit_band(ValueSums(), None, None)[
        "pixels"] == 0


def dated(records, days, scrambled=None, seed=0):
    """The records with ``sentinel_1_timestamp``/``sentinel_2_timestamp`` on
    ``days`` (and the band ``scrambled`` given random values)."""
    import datetime

    from transforms.dataset import example_proto

    names = ("sensor_id", "timestamp", "center_lat", "center_long", "size", *TRUE)
    kinds = {"sensor_id": "bytes", "timestamp": "float", "center_lat": "float",
             "center_long": "float"}
    rng = np.random.default_rng(seed)
    for record in records:
        found = example_proto.read_features(record, names)
        features = {n: (kinds.get(n, "int64"), v) for n, v in found.items()}
        for name, day in zip(("sentinel_1_timestamp", "sentinel_2_timestamp"), days):
            when = datetime.datetime.fromisoformat(day + "T10:00:00+00:00").timestamp() * 1000
            features[name] = ("float", [when])
        if scrambled:
            features[scrambled] = ("int64", rng.integers(40, 190, len(found[scrambled])))
        yield example_proto.encode_example(features)


def test_acquired_fits_only_the_scenes_own_days(release, tmp_path, capfd):
    """Examples of another acquisition at the same place (their B3 is other
    values) spoil the fit; the table lists both day pairs, and ``--acquired``
    picks the scene's: the fit is exact again."""
    import glob

    from transforms.dataset import tfrecord_io

    _, raw, shards, _ = release
    records = [r for p in sorted(glob.glob(shards)) for r in tfrecord_io.read_shard(p)]
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    tfrecord_io.write_shard(str(mixed / "a.tfrecord.gz"), dated(records, ("2021-06-01",
                                                                         "2021-06-03")))
    tfrecord_io.write_shard(str(mixed / "b.tfrecord.gz"), dated(
        records, ("2021-06-13", "2021-06-08"), scrambled="sentinel_2_B3"))
    argv = ["--scene_path", raw, "--compare_with", str(mixed / "*.gz"), "--fit_encoding",
            tmp_path / "enc.json", "--output_dir", tmp_path / "check"]
    rc, out, err = run(capfd, *argv)
    line = one_line(rc, out, err, 1)
    assert "sentinel_2_B3" in line and not (tmp_path / "enc.json").exists()
    assert ("examples inside the scene by (Sentinel-1 day, Sentinel-2 day): "
            "2021-06-01/2021-06-03 16, 2021-06-13/2021-06-08 16") in out
    rc, out, err = run(capfd, *argv, "--acquired", "2021-06-01,2021-06-03")
    assert rc == 0, err
    compared = json.load(open(tmp_path / "check" / "compare.json"))
    assert compared["examples"] == 16 and compared["skipped_by_cause"]["other_acquisitions"] == 16
    assert compared["acquired"] == ["2021-06-01", "2021-06-03"]
    fit = json.load(open(tmp_path / "enc.json"))["sentinel_2_B3"]
    assert fit["r"] == pytest.approx(1, abs=1e-9)
    # a day pair no example has: nothing compared, one line naming the cause and the pairs
    rc, out, err = run(capfd, *argv, "--acquired", "2021-07-01,2021-07-01")
    assert ("(32 other acquisitions); inside the scene: 2021-06-01/2021-06-03 16, "
            "2021-06-13/2021-06-08 16") in one_line(rc, out, err, 1)


@pytest.mark.parametrize("flags,words", [
    (["--acquired", "2021-06-01"], "YYYY-MM-DD,YYYY-MM-DD"),
    (["--acquired", "2021-13-01,2021-06-01"], "YYYY-MM-DD,YYYY-MM-DD"),
])
def test_a_wrong_acquired_exits_2(release, tmp_path, capfd, flags, words):
    _, raw, shards, _ = release
    rc, out, err = run(capfd, "--scene_path", raw, "--compare_with", shards, "--output_dir",
                       tmp_path / "c", *flags)
    assert words in one_line(rc, out, err, 2)


def test_acquired_without_compare_with_exits_2(release, tmp_path, capfd):
    _, raw, _, _ = release
    rc, out, err = run(capfd, "--scene_path", raw, "--points", "p.csv", "--timestamp", WHEN,
                       "--output_dir", tmp_path / "c", "--acquired", "2021-06-01,2021-06-03")
    assert "--acquired picks the examples" in one_line(rc, out, err, 2)


def test_fit_encoding_never_overwrites_an_input(release, tmp_path, capfd):
    """The fit's file is a new .json: a scene raster, a shard or the STAC
    file the scene is read from are refused before anything runs, untouched."""
    import glob

    _, raw, shards, _ = release
    shard = sorted(glob.glob(shards))[0]
    items = tmp_path / "items.json"
    items.write_text("{}")
    for target, scene in ((os.path.join(raw, "smap_sm.tif"), raw), (shard, raw),
                          (str(items), str(items))):
        before = open(target, "rb").read()
        rc, out, err = run(capfd, "--scene_path", scene, "--compare_with", shards,
                           "--fit_encoding", target, "--output_dir", tmp_path / "c")
        one_line(rc, out, err, 2)
        assert open(target, "rb").read() == before, target
