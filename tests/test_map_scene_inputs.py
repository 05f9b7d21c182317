"""predict_map's scene inputs (issue #29): what a hostile scene cannot slip
past ``scene.read_scene`` and the tile reads.

Refused, one line naming the file: a raster without a geotransform, a
single-band file named for one band and described as another, a declared
scale/offset, image bands not north-up, a dangling link, a FIFO; read
failures (a truncated file) name the file, also through the command. A GDAL
mask is nodata; SMAP/GLDAS values outside 0-255 are invalid, never fed;
glob characters in the scene path are literal; a 0-360 degree aux grid and
a south-up aux grid give the same lookups as the plain one; a grid mismatch
says what differs.
"""

import os
import shutil
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

from transforms.mapping import scene as scene_module
from transforms.mapping import tiles
from transforms.mapping.geometry import MapGeometry, Region
from transforms.mapping.scene import SceneError, read_region, read_scene
from transforms.synthetic.scene import SceneConfig, make_scene

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEIGHT, WIDTH = 256, 320
IMAGE = scene_module.IMAGE_BANDS


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("base") / "scene")
    make_scene(SceneConfig(folder, HEIGHT, WIDTH, seed=1))
    return folder


@pytest.fixture
def folder(base, tmp_path):
    out = str(tmp_path / "scene")
    shutil.copytree(base, out)
    return out


def band(folder, name):
    return os.path.join(folder, f"{name}.tif")


def rewrite(path, data=None, after=None, drop=(), first=None, **changes):
    """Write ``path`` again: its data (or ``data``, 2-D or bands-first),
    its profile with ``changes`` and without ``drop``; ``first(ds)`` before
    the data is written, ``after(ds)`` before it is closed."""
    import rasterio

    with rasterio.open(path) as ds:
        old, profile, descriptions = ds.read(), dict(ds.profile), ds.descriptions
    data = old if data is None else np.asarray(data)
    data = data[None] if data.ndim == 2 else data
    profile.update(changes, count=data.shape[0])
    for key in drop:
        profile.pop(key, None)
    os.remove(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NotGeoreferencedWarning, on purpose
        with rasterio.open(path, "w", **profile) as ds:
            if first:
                first(ds)
            ds.write(data.astype(profile["dtype"]))
            for k, d in enumerate(descriptions[:ds.count], start=1):
                ds.set_band_description(k, d or "")
            if after:
                after(ds)


def refused(folder, *words):
    """read_scene's SceneError: one line holding each of ``words``."""
    with pytest.raises(SceneError) as e:
        read_scene(folder)
    message = str(e.value)
    assert "\n" not in message and all(w in message for w in words), message
    return message


def aux_pixels(found, name, rows, cols):
    """The oracle: ``(row, col)`` of the ``name`` raster's pixel holding
    each scene point, by pyproj and rasterio alone."""
    import rasterio
    from affine import Affine
    from pyproj import Transformer

    with rasterio.open(band(found.path, name)) as ds:
        to_aux = Transformer.from_crs(found.grid.crs, ds.crs, always_xy=True)
        xs, ys = Affine(*found.grid.transform) @ (np.asarray(cols, float), np.asarray(rows, float))
        return [ds.index(*to_aux.transform(x, y)) for x, y in zip(xs, ys)]


def run_cli(argv):
    proc = subprocess.run([sys.executable, "-m", "pipelines.predict_map", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if "predict_map: error" in line]
    return proc.returncode, lines, proc.stderr


# 1. no geotransform

@pytest.mark.parametrize("name", ["sentinel_2_B8", "smap_sm"])
def test_a_raster_without_a_geotransform_is_refused(folder, name):
    rewrite(band(folder, name), drop=("transform",))
    refused(folder, band(folder, name), "no geotransform")


# 2. single-band files: the file name wins; a contradicting description is refused

def test_a_file_named_for_one_band_and_described_as_another_is_refused(folder):
    import rasterio

    with rasterio.open(band(folder, "sentinel_2_B4"), "r+") as ds:
        ds.set_band_description(1, "sentinel_2_B3")
    refused(folder, band(folder, "sentinel_2_B4"), "named for band sentinel_2_B4",
            "described as sentinel_2_B3")


def test_a_sidecar_description_cannot_swap_bands_either(folder):
    with open(band(folder, "sentinel_2_B3") + ".aux.xml", "w") as f:
        f.write('<PAMDataset><PAMRasterBand band="1"><Description>sentinel_2_B4'
                '</Description></PAMRasterBand></PAMDataset>')
    refused(folder, band(folder, "sentinel_2_B3"), "described as sentinel_2_B4")


def test_the_file_name_wins_over_another_description_and_a_description_names_a_file(folder):
    import rasterio

    with rasterio.open(band(folder, "sentinel_2_B4"), "r+") as ds:
        ds.set_band_description(1, "red")
    os.rename(band(folder, "sentinel_2_B8"), os.path.join(folder, "nir.tif"))
    found = read_scene(folder)
    assert found.bands["sentinel_2_B4"].files[0].path == band(folder, "sentinel_2_B4")
    assert found.bands["sentinel_2_B8"].files[0].path == os.path.join(folder, "nir.tif")


# 3. GDAL masks are nodata

BOX = (slice(40, 60), slice(100, 130))


def _masked_and_read(folder, name):
    found = read_scene(folder)
    values, nodata = read_region(found.bands[name], found.grid,
                                 Region(-8, -8, HEIGHT + 16, WIDTH + 16))
    expected = np.zeros((HEIGHT + 16, WIDTH + 16), bool)
    expected[BOX[0].start + 8:BOX[0].stop + 8, BOX[1].start + 8:BOX[1].stop + 8] = True
    return found, nodata, expected


def test_an_internal_mask_is_nodata(folder):
    def mask(ds):
        m = np.full((HEIGHT, WIDTH), 255, np.uint8)
        m[BOX] = 0
        ds.write_mask(m)

    rewrite(band(folder, "sentinel_2_B8"), drop=("nodata",), after=mask)
    found, nodata, expected = _masked_and_read(folder, "sentinel_2_B8")
    assert np.array_equal(nodata, expected)
    # the map: a window inside the scene is band_nodata exactly when it holds a masked pixel
    geometry = MapGeometry(HEIGHT, WIDTH, 32, 64, 16)
    (tile,) = list(geometry.tiles())
    causes = next(tiles.tile_windows(found, geometry, tile))[1]
    hits = 0
    for a in range(tile.height):
        for b in range(tile.width):
            r, c = geometry.window_origin(a, b)
            if r < 0 or c < 0 or r + 64 > HEIGHT or c + 64 > WIDTH:
                continue
            held = r < BOX[0].stop and r + 64 > BOX[0].start and c < BOX[1].stop \
                and c + 64 > BOX[1].start
            hits += held
            assert causes[a, b] == (tiles.CAUSES.index("band_nodata") + 1 if held else 0), (a, b)
    assert hits >= 4


@pytest.mark.parametrize("dtype", ["int16", "uint16"])
def test_an_alpha_band_is_a_mask_not_a_band(folder, dtype):
    import rasterio
    from rasterio.enums import ColorInterp

    path = band(folder, "sentinel_2_B8")
    with rasterio.open(path) as ds:
        data = ds.read(1)
    alpha = np.full((HEIGHT, WIDTH), 255, dtype)
    alpha[BOX] = 0

    def interp(ds):
        ds.colorinterp = [ColorInterp.gray, ColorInterp.alpha]

    rewrite(path, np.stack([data, alpha]), drop=("nodata",), dtype=dtype, first=interp)
    found, nodata, expected = _masked_and_read(folder, "sentinel_2_B8")
    assert found.bands["sentinel_2_B8"].files[0].index == 1
    assert np.array_equal(nodata, expected)


def test_a_masked_aux_pixel_is_nodata(folder):
    found = read_scene(folder)
    rows, cols = np.array([10.0, 200.0]), np.array([10.0, 300.0])
    (r, c), other = aux_pixels(found, "smap_sm", rows, cols)
    assert (r, c) != other
    grid = found.aux["smap_sm"].files[0].grid

    def mask(ds):
        m = np.full((grid.height, grid.width), 255, np.uint8)
        m[r, c] = 0
        ds.write_mask(m)

    rewrite(band(folder, "smap_sm"), drop=("nodata",), after=mask)
    _, outside, nodata, _ = tiles.aux_at_points(read_scene(folder), "smap_sm", rows, cols)
    assert nodata.tolist() == [True, False] and not outside.any()


def test_a_band_without_a_mask_reads_no_mask(base, monkeypatch):
    import rasterio.io

    def no(*args, **kwargs):
        raise AssertionError("read_masks on a band without a mask")

    found = read_scene(base)
    monkeypatch.setattr(rasterio.io.DatasetReader, "read_masks", no)
    for source in (*found.bands.values(),):
        read_region(source, found.grid, Region(0, 0, 64, 64))
    tiles.aux_at_points(found, "smap_sm", np.array([5.0]), np.array([5.0]))


# 4. SMAP/GLDAS outside 0-255

def test_aux_values_outside_the_encoding_are_invalid_never_fed(tmp_path):
    import rasterio

    folder = str(tmp_path / "fine")
    make_scene(SceneConfig(folder, HEIGHT, WIDTH, seed=4, aux_degrees=0.002))  # ~200 m pixels
    found = read_scene(folder)
    geometry = MapGeometry(HEIGHT, WIDTH, 32, 64, 16)
    (tile,) = list(geometry.tiles())
    i, j = np.mgrid[0:tile.height, 0:tile.width]
    centres = aux_pixels(found, "smap_sm", (i * 32 + 16).ravel(), (j * 32 + 16).ravel())
    with rasterio.open(band(folder, "smap_sm")) as ds:
        smap = ds.read(1)
    for k, value in ((11, 900), (25, -9999), (33, 256), (47, 255), (54, 0), (62, -1)):
        smap[centres[k]] = value  # -1: nodata; 0 and 255: the edges of the encoding
    rewrite(band(folder, "smap_sm"), smap)
    held = np.array([smap[c] for c in centres]).reshape(tile.height, tile.width)
    expected = (held != -1) & ((held < 0) | (held > 255))
    assert expected.sum() >= 3 and (held == 255).any() and (held == 0).any()
    values, outside, nodata, invalid = tiles.aux_values(found, "smap_sm", geometry, tile)
    assert not outside.any() and np.array_equal(values, np.where(held == -1, 0, held))
    assert np.array_equal(invalid, expected) and np.array_equal(nodata, held == -1)
    assert not (nodata & invalid).any()  # a value is nodata or invalid, never both
    items = list(tiles.tile_windows(found, geometry, tile))
    causes = items[0][1]
    inside = causes != tiles.CAUSES.index("outside_scene") + 1
    # a cause of their own, never fed to the model
    assert (expected & inside).any() and {int(v) for v in causes[expected & inside]} == {
        tiles.CAUSES.index("smap_invalid") + 1}
    fed = {tuple(p) for kind, (pixels, _) in items[1:] if kind == "batch" for p in pixels}
    assert fed and not fed & {(int(a), int(b)) for a, b in zip(*np.nonzero(expected))}


def test_a_float_aux_raster_is_refused_and_its_nans_are_nodata(folder):
    import dataclasses

    found = read_scene(folder)
    path = band(folder, "gldas_sm")
    grid = found.aux["gldas_sm"].files[0].grid
    rewrite(path, np.full((grid.height, grid.width), np.nan, np.float32), dtype="float32",
            nodata=None)
    refused(folder, path, "float32")
    source = dataclasses.replace(found.aux["gldas_sm"].files[0], nodata=None, dtype="float32")
    scene = dataclasses.replace(found, aux={**found.aux, "gldas_sm": dataclasses.replace(
        found.aux["gldas_sm"], files=(source,))})
    values, outside, nodata, invalid = tiles.aux_at_points(
        scene, "gldas_sm", np.array([100.0]), np.array([100.0]))
    assert not outside[0] and nodata[0] and not invalid[0]


# 5. not north-up

@pytest.mark.parametrize("how,transform", [
    ("south-up", (10, 0, 500000, 0, 10, 5300000 - 10 * HEIGHT)),
    ("rotated", (10, 1, 500000, 1, -10, 5300000)),
    ("east-to-west", (-10, 0, 500000 + 10 * WIDTH, 0, -10, 5300000)),
])
def test_image_bands_not_north_up_are_refused(folder, how, transform):
    from affine import Affine

    for name in IMAGE:  # all of them: one grid, so only the orientation is wrong
        rewrite(band(folder, name), transform=Affine(*transform))
    refused(folder, "not north-up", how, "gdalwarp")


def test_pixels_not_square_are_said_with_both_sizes():
    """10 m x 20 m pixels: at stride 32 the map pixels are 320 x 640 m, and the
    model was trained on square ones."""
    from transforms.mapping.geometry import pixel_shape_note

    assert pixel_shape_note((10, 0, 500000, 0, -20, 5300000), 32) == (
        "WARNING: the scene's pixels are 10 x 20 map units, not square, so the map's are "
        "320 x 640; the model was trained on square 10 m pixels (warp the scene to square "
        "ones, e.g. gdalwarp -tr)")
    assert pixel_shape_note((10, 0, 5e5, 0, -10, 5.3e6), 32) == ""


def test_a_south_up_aux_raster_gives_the_same_values(folder):
    import rasterio
    from affine import Affine

    found = read_scene(folder)
    rng = np.random.default_rng(0)
    rows, cols = rng.uniform(0, HEIGHT, 200), rng.uniform(0, WIDTH, 200)
    before = tiles.aux_at_points(found, "smap_sm", rows, cols)
    path = band(folder, "smap_sm")
    with rasterio.open(path) as ds:
        data, t, height = ds.read(1), ds.transform, ds.height
    rewrite(path, data[::-1], transform=Affine(t.a, 0, t.c, 0, -t.e, t.f + t.e * height))
    after = tiles.aux_at_points(read_scene(folder), "smap_sm", rows, cols)
    for a, b in zip(before, after):
        assert np.array_equal(a, b)


# 6. glob characters in the scene path

def test_glob_characters_in_the_scene_path_are_literal(base, tmp_path):

    literal = str(tmp_path / "site[1]")
    shutil.copytree(base, literal)
    sibling = tmp_path / "site1"
    sibling.mkdir()
    (sibling / "other.tif").write_bytes(b"not this")
    assert scene_module.scene_files(literal) == sorted(
        os.path.join(literal, n) for n in os.listdir(literal))
    assert read_scene(literal).bands["sentinel_1_VV"].files[0].path.startswith(literal + os.sep)
    for name in ("s[1]", "s?", "s*", "s[]"):  # gs:// paths: through Beam, taken literally
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.tif").write_bytes(b"")
    for name in ("s1", "sx", "s", "s[]x"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "b.tif").write_bytes(b"")
    for name in ("s[1]", "s?", "s*", "s[]"):
        assert scene_module.files.files_in(str(tmp_path / name) + "/") == [
            str(tmp_path / name / "a.tif")], name


# 7. a 0-360 degree aux grid

def test_an_aux_raster_on_a_0_360_longitude_grid_gives_the_same_values(tmp_path):
    import rasterio
    from affine import Affine

    folder = str(tmp_path / "west")
    make_scene(SceneConfig(folder, HEIGHT, WIDTH, seed=2, epsg=32614))  # near 99 W
    found = read_scene(folder)
    rng = np.random.default_rng(1)
    rows, cols = rng.uniform(0, HEIGHT, 200), rng.uniform(0, WIDTH, 200)
    before = tiles.aux_at_points(found, "gldas_sm", rows, cols)
    assert not before[1].any()
    path = band(folder, "gldas_sm")
    with rasterio.open(path) as ds:
        t = ds.transform
    assert t.c < 0
    rewrite(path, transform=Affine(t.a, 0, t.c + 360, 0, t.e, t.f))
    after = tiles.aux_at_points(read_scene(folder), "gldas_sm", rows, cols)
    for a, b in zip(before, after):
        assert np.array_equal(a, b)


# 8. declared scale/offset

@pytest.mark.parametrize("name", ["sentinel_1_VV", "gldas_sm"])
def test_a_declared_scale_or_offset_is_refused(folder, name):
    def scale(ds):
        ds.scales, ds.offsets = (0.01,), (-5.0,)

    rewrite(band(folder, name), after=scale)
    refused(folder, band(folder, name), "declares scale 0.01 and offset -5")


# 9. a truncated file: the read names it

def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def test_a_truncated_band_or_aux_raster_fails_naming_the_file(folder):
    found = read_scene(folder)
    for name in ("sentinel_2_B4", "smap_sm"):
        _truncate(band(folder, name))
    with pytest.raises(SceneError, match="sentinel_2_B4.tif cannot be read") as e:
        read_region(found.bands["sentinel_2_B4"], found.grid, Region(0, 0, HEIGHT, WIDTH))
    assert "\n" not in str(e.value)
    with pytest.raises(SceneError, match="smap_sm.tif cannot be read"):
        tiles.aux_at_points(found, "smap_sm", np.array([0.0, HEIGHT]), np.array([0.0, WIDTH]))


def test_the_command_on_a_truncated_band_is_one_line_naming_it(folder, reference_model,
                                                               tmp_path):
    _truncate(band(folder, "sentinel_2_B4"))
    out = tmp_path / "out" / "map.tif"
    rc, lines, stderr = run_cli(["--scene_path", folder, "--exported_model_dir",
                                 reference_model, "--output_path", str(out), "--stride", "64"])
    assert rc == 1 and len(lines) == 1, stderr[-3000:]
    assert band(folder, "sentinel_2_B4") in lines[0] and "cannot be read" in lines[0]
    assert not out.parent.exists() or os.listdir(out.parent) == []


# 10-12. links, grids, non-regular files

def test_a_dangling_link_is_named(folder, reference_model, tmp_path):
    path = band(folder, "sentinel_2_B4")
    os.remove(path)
    os.symlink(str(tmp_path / "nowhere.tif"), path)
    refused(folder, path, "is a link to a missing file")
    rc, lines, stderr = run_cli(["--scene_path", folder, "--exported_model_dir",
                                 reference_model, "--output_path", str(tmp_path / "m.tif")])
    assert rc == 1 and len(lines) == 1 and path in lines[0], stderr[-2000:]


@pytest.mark.parametrize("changes,words", [
    ({"crs": "EPSG:25833"}, "CRS EPSG:25833 vs EPSG:32633"),  # ETRS89: within a metre
    ({"transform": (10, 0, 500000.0000001, 0, -10, 5300000)}, "transform (10.0, 0.0, 500000.0"),
    ({"height": HEIGHT - 1}, f"size {WIDTH}x{HEIGHT - 1} vs {WIDTH}x{HEIGHT} pixels"),
])
def test_a_band_on_another_grid_is_resampled_and_said(folder, changes, words):
    from affine import Affine
    from rasterio.crs import CRS

    from transforms.mapping.scene import grid_difference, resampling_line

    path = band(folder, "sentinel_2_B8")
    data = None
    if "crs" in changes:
        changes = {"crs": CRS.from_string(changes["crs"])}
    if "transform" in changes:
        changes = {"transform": Affine(*changes["transform"])}
    if "height" in changes:
        import rasterio

        with rasterio.open(path) as ds:
            data = ds.read(1)[:HEIGHT - 1]
    rewrite(path, data, **changes)
    found = read_scene(folder)
    assert found.resampled() == ["sentinel_2_B8"]
    line = resampling_line(found)
    assert "1 of 14 bands resampled" in line and "sentinel_2_B8" in line, line
    message = grid_difference(found.bands["sentinel_2_B8"].files[0].grid, found.grid)
    assert words in message, message
    if "transform" in changes:  # the digits that differ are shown
        assert "500000.0000001" in message


def test_the_same_crs_in_other_words_is_one_grid():
    from rasterio.crs import CRS

    crs = CRS.from_epsg(32633)
    a = scene_module.Grid(crs.to_wkt(), (10, 0, 0, 0, -10, 0), 5, 5)
    b = scene_module.Grid(crs.to_wkt(version="WKT2_2019"), (10, 0, 0, 0, -10, 0), 5, 5)
    assert a.crs != b.crs and scene_module.grid_difference(a, b) == ""


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_file_that_is_not_regular_is_refused_without_hanging(folder, kind):
    path = band(folder, "sentinel_2_B8")
    os.remove(path)
    os.mkfifo(path) if kind == "fifo" else os.mkdir(path)
    errors = []
    reader = threading.Thread(target=lambda: errors.append(pytest.raises(SceneError, read_scene,
                                                                         folder)), daemon=True)
    reader.start()
    reader.join(20)
    if reader.is_alive():  # a reader blocked on the FIFO: let it go, then fail
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"read_scene hangs on a {kind}")
    assert errors, "read_scene did not refuse it"
    message = str(errors[0].value)
    assert path in message and "not a regular file" in message, message
