"""predict_map's and cut_examples' rules, one focused test each (README,
"predict_map": "Geometry, exactly", "Nodata, never a silent guess"; "The
same windows as examples"), against ``map_oracle``, which restates them
with rasterio, pyproj and numpy and imports nothing of ``transforms`` or
``model_runner``.

The model is a stand-in with the released interface whose output is a
known linear function of its window (``map_oracle.expected_output``), and
the scenes are made so that a map value tells which window and which
SMAP/GLDAS pixels it came from (see ``map_oracle``). Six small maps are
made once (in this process, ``pipelines.predict_map.run``):

* ``P`` (probes): 122 x 184 pixels at stride 6, window 16, SMAP and GLDAS
  everywhere; single nodata pixels planted on and just beside chosen
  windows' edges, one band each; in ``nan`` and ``pad`` edge modes;
* ``A`` (auxiliary rasters): 125 x 184 at stride 6, window 16 (the last map
  row's windows end exactly on the scene's bottom edge); SMAP (EPSG:4326)
  missing west of the third map column, GLDAS (the scene's CRS, every centre
  exactly on its pixel corners) missing above the fourth map row and from
  the 26th column, nodata planted so that every pair of causes meets;
* ``B``: 96 x 105 at stride 8, window 10: windows one pixel outside the top,
  left and bottom edges, ending exactly on the right edge;
* ``C``: the README's worked example: a model that crops to 256 x 256, so
  its window is found to be 256; stride 32 on a 304 x 384 scene; and again
  with ``--feed_whole_images --image_size 288``.

Scenes P and A are also cut into 16 x 16 examples by ``cut_examples``.

Pixel-by-pixel causes are read from the tiles' cause arrays
(``transforms.mapping.tiles.tile_windows``, named by ``tiles.CAUSES``); the
summary's counts and the map's NaN pixels are checked against the oracle
too, so a cause the map computes but counts wrongly shows.
"""

import itertools
import json
import os

import numpy as np
import pytest

import map_oracle as mo
from map_oracle import (ANGLE, B2, B3, B4, B8, B11, B12, BANDS, BD, CLAY, DEM, GLDAS, NODATA,
                        SAND, SILT, SMAP, VH, VV)

#: |map - oracle|: the stand-in sums in float64 and answers in float32 (values below 64,
#: ulp 4e-6); a window one pixel off moves it by 1/8, a SMAP pixel off by 1/255 or more
TOL = 5e-5

# --------------------------------------------------------------------------- scene P
P_SHAPE, P_STRIDE, P_WINDOW = (122, 184), 6, 16  # window of (i, j): rows 6i-5 ... 6i+10
#: (rule, band, target map pixel, the nodata pixel's offset from the target
#: window's top-left scene pixel, whether the target is NaN)
PROBES = [
    ("first_row", VV, (5, 4), (0, 7), True),
    ("last_row", DEM, (5, 10), (15, 7), True),
    ("first_col", SAND, (5, 16), (7, 0), True),
    ("last_col", BD, (5, 22), (7, 15), True),
    ("row_above", B4, (10, 4), (-1, 7), False),
    ("row_below", B8, (10, 10), (16, 7), False),
    ("col_left", B11, (10, 16), (7, -1), False),
    ("col_right", CLAY, (10, 22), (7, 16), False),  # clay's nodata value is 0
    ("top_left_corner", VH, (15, 4), (0, 0), True),
    ("bottom_right_corner", B12, (15, 10), (15, 15), True),
    ("inside", B3, (15, 16), (8, 8), True),
    ("inside_other", B2, (15, 22), (3, 12), True),
]
#: nodata pixels on the scene's four edges (seen in pad mode)
P_EDGE_NODATA = [(SILT, 0, 60), (B4, 100, 183), (B12, 121, 33), (SAND, 40, 0)]
P_MORE_NODATA = [(SILT, 110, 130)]  # silt inside too
#: values equal to another band's nodata value (or in the band without one): data
P_DECOYS = [(ANGLE, 70, 100, NODATA[VV]), (ANGLE, 30, 150, NODATA[DEM]), (ANGLE, 90, 40, 0),
            (B8, 50, 120, NODATA[B4]), (SAND, 20, 110, NODATA[SILT])]
#: cut_examples on P (size 16): the corner each point is near, and its offset in pixels
CUT_SIZE = 16
NEAR_CORNERS = {"down_right": ((41, 51), (0.3, 0.3)), "up_right": ((61, 73), (-0.3, 0.3)),
                "down_left": ((81, 95), (0.3, -0.3)), "up_left": ((101, 117), (-0.3, -0.3))}
#: corners whose example ends exactly on a scene edge (cut), or one pixel further (outside)
EDGE_CORNERS = {"top": ((8, 51), (7, 51)), "bottom": ((114, 51), (115, 51)),
                "left": ((61, 8), (61, 7)), "right": ((61, 176), (61, 177))}
#: the B8 nodata pixel at (71, 62): examples holding it on an edge row or column, and
#: examples one pixel away from it
NODATA_CORNERS = {"first_row": (79, 62), "last_row": (64, 62), "first_col": (71, 70),
                  "last_col": (71, 55)}
CLEAR_CORNERS = {"row_above": (80, 62), "row_below": (63, 62), "col_left": (71, 71),
                 "col_right": (71, 54)}

# --------------------------------------------------------------------------- scene A
A_SHAPE = (125, 184)  # the windows of map row 19 end on scene row 124, the last
A_SMAP_WEST_COL = 12  # SMAP covers the centres of map columns 2 and more
A_GLDAS = dict(i0=3, i1=23, j0=0, j1=25)  # GLDAS top edge on row 3's centres, right on column 25's
A_BAND_NODATA = [(SILT, 2, 81), (B4, 51, 9), (B8, 60, 160), (DEM, 100, 70)]
A_SMAP_NODATA = [(0, 5), (16, 11), (1, 7), (12, 6), (6, 26), (10, 15), (0, 20), (14, 29)]
A_GLDAS_NODATA = [(5, 0), (17, 12), (12, 1), (12, 6), (14, 20), (8, 0)]
A_SMAP_ZERO, A_GLDAS_255 = [(6, 6), (7, 8)], [(6, 6), (9, 9)]  # valid values at the ends of 0-255
A_PROTECTED_ROWS, A_PROTECTED_COLS = (2, 3, 19), (2, 24, 25)  # no random aux nodata there
#: cut_examples on A: corner -> the reason expected (first that applies), "" when it is cut
A_CUTS = {(101, 141): "", (7, 51): "outside_scene", (101, 71): "band_nodata",
          (41, 9): "smap_outside", (61, 101): "smap_nodata", (11, 51): "gldas_outside",
          (81, 121): "gldas_nodata", (5, 81): "outside_scene", (51, 11): "band_nodata",
          (11, 9): "smap_outside"}

# --------------------------------------------------------------------------- scenes B, C
B_SHAPE, B_STRIDE, B_WINDOW = (96, 105), 8, 10  # windows of (i, j): rows 8i-1 ... 8i+8
B_GLDAS = dict(i0=-1, i1=9, j0=1, j1=14)  # left edge on column 1's centres, bottom on row 9's
C_SHAPE, C_STRIDE = (304, 384), 32  # 9.5 x 12 map pixels


# --------------------------------------------------------------------------- building

def probe_pixel(target, offset, s=P_STRIDE, w=P_WINDOW):
    top, left = mo.Oracle.origin(*target, s, w)
    return top + offset[0], left + offset[1]


def build_p(folder):
    rng = np.random.default_rng(11)
    bands = mo.make_bands(rng, *P_SHAPE)
    for _, band, target, offset, _ in PROBES:
        bands[band][probe_pixel(target, offset)] = NODATA[band]
    for band, r, c in P_EDGE_NODATA + P_MORE_NODATA:
        bands[band][r, c] = NODATA[band]
    for band, r, c, value in P_DECOYS:
        bands[band][r, c] = value
    rows, cols = P_SHAPE[0] // P_STRIDE, P_SHAPE[1] // P_STRIDE
    corners = ([c for c, _ in NEAR_CORNERS.values()] + [c for pair in EDGE_CORNERS.values()
                                                        for c in pair]
               + list(NODATA_CORNERS.values()) + list(CLEAR_CORNERS.values()))
    aux = {SMAP: mo.smap_raster(rng, *P_SHAPE, mo.centres(rows, cols, P_STRIDE) + corners),
           GLDAS: mo.gldas_raster(rng, P_STRIDE, -2, rows + 2, -2, cols + 2)}
    return mo.write_scene(folder, bands, aux)


def build_a(folder):
    rng = np.random.default_rng(12)
    s = P_STRIDE
    rows, cols = A_SHAPE[0] // s, A_SHAPE[1] // s
    bands = mo.make_bands(rng, *A_SHAPE)
    for band, r, c in A_BAND_NODATA:
        bands[band][r, c] = NODATA[band]
    centre = {(i, j): mo.Oracle.centre(i, j, s) for i in range(rows) for j in range(cols)}
    smap = mo.smap_raster(rng, *A_SHAPE, list(centre.values()) + list(A_CUTS),
                          west_col=A_SMAP_WEST_COL)
    gldas = mo.gldas_raster(rng, s, **A_GLDAS)
    smap_ok = {p for p, (r, c) in centre.items() if c > A_SMAP_WEST_COL}
    gldas_ok = {p for p in centre if A_GLDAS["i0"] <= p[0] and p[1] < A_GLDAS["j1"]}
    free = [p for p in centre if p[0] not in A_PROTECTED_ROWS and p[1] not in A_PROTECTED_COLS]
    chosen = [free[k] for k in rng.permutation(len(free))]
    random_smap = [p for p in chosen[:len(free) // 12] if p in smap_ok]
    random_gldas = [p for p in chosen[-(len(free) // 12):] if p in gldas_ok]
    smap.set_at([centre[p] for p in A_SMAP_NODATA + random_smap], mo.SMAP_NODATA)
    gldas.set_at([centre[p] for p in A_GLDAS_NODATA + random_gldas], mo.GLDAS_NODATA)
    smap.set_at([centre[p] for p in A_SMAP_ZERO], 0)
    gldas.set_at([centre[p] for p in A_GLDAS_255], 255)
    # the examples' corners: their own SMAP/GLDAS pixel (never a map centre's)
    smap.set_at([(61, 101)], mo.SMAP_NODATA)
    gldas.set_at([(81, 121)], mo.GLDAS_NODATA)
    assert set(zip(*smap.index([61], [101]))).isdisjoint(
        zip(*smap.index(*zip(*centre.values()))))
    return mo.write_scene(folder, bands, {SMAP: smap, GLDAS: gldas})


def build_b(folder):
    rng = np.random.default_rng(13)
    bands = mo.make_bands(rng, *B_SHAPE)
    bands[B11][40, 50] = NODATA[B11]
    rows, cols = B_SHAPE[0] // B_STRIDE, B_SHAPE[1] // B_STRIDE
    aux = {SMAP: mo.smap_raster(rng, *B_SHAPE, mo.centres(rows, cols, B_STRIDE)),
           GLDAS: mo.gldas_raster(rng, B_STRIDE, **B_GLDAS)}
    return mo.write_scene(folder, bands, aux)


def build_c(folder):
    rng = np.random.default_rng(14)
    bands = mo.make_bands(rng, *C_SHAPE)
    rows, cols = C_SHAPE[0] // C_STRIDE, C_SHAPE[1] // C_STRIDE
    aux = {SMAP: mo.smap_raster(rng, *C_SHAPE, mo.centres(rows, cols, C_STRIDE)),
           GLDAS: mo.gldas_raster(rng, C_STRIDE, -1, rows + 1, -1, cols + 1)}
    return mo.write_scene(folder, bands, aux)


class Mapped:
    """One predict_map run: its summary, the map's values, transform, CRS,
    the oracle's map, and the implementation's per-pixel causes."""

    def __init__(self, folder, summary, path, stride, window, pad):
        import rasterio

        self.folder, self.summary, self.stride, self.window = folder, summary, stride, window
        with rasterio.open(path) as ds:
            self.values = ds.read(1)
            self.transform, self.crs = ds.transform, ds.crs
        self.oracle = mo.Oracle(folder)
        self.expected = self.oracle.map(stride, window, pad)
        self.pad = pad
        self._causes = None

    @property
    def causes(self):
        """The implementation's cause of each map pixel (``predicted`` or a
        name of ``tiles.CAUSES``), from its tiles' cause arrays."""
        if self._causes is None:
            from transforms.mapping import MapGeometry, read_scene
            from transforms.mapping import tiles

            scene = read_scene(self.folder)
            geometry = MapGeometry(scene.grid.height, scene.grid.width, self.stride, self.window,
                                   7)
            names = np.array(["predicted", *tiles.CAUSES], dtype=object)
            out = np.empty(geometry.shape, dtype=object)
            for tile in geometry.tiles():
                kind, codes = next(iter(tiles.tile_windows(
                    scene, geometry, tile, "pad" if self.pad else "nan", 8)))
                assert kind == "causes"
                out[tile.row:tile.row + tile.height, tile.col:tile.col + tile.width] = names[codes]
            self._causes = out
        return self._causes


def predict(folder, model, out, stride, image_size=None, pad=False, tile=7, window=None):
    from pipelines import predict_map

    argv = ["--scene_path", folder, "--exported_model_dir", model, "--output_path", out,
            "--stride", str(stride), "--tile_size", str(tile), "--batch_size", "5",
            "--edge_mode", "pad" if pad else "nan"]
    if image_size:
        argv += ["--image_size", str(image_size)]
    summary = predict_map.run(argv)
    return Mapped(folder, summary, out, stride, window or image_size, pad)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("map_rules")


@pytest.fixture(scope="module")
def model(work):
    return mo.export_linear_model(str(work / "linear"))


@pytest.fixture(scope="module")
def scene_p(work):
    return build_p(str(work / "P"))


@pytest.fixture(scope="module")
def scene_a(work):
    return build_a(str(work / "A"))


@pytest.fixture(scope="module")
def map_p(scene_p, model, work):
    return predict(scene_p, model, str(work / "p.tif"), P_STRIDE, P_WINDOW)


@pytest.fixture(scope="module")
def map_p_pad(scene_p, model, work):
    return predict(scene_p, model, str(work / "p_pad.tif"), P_STRIDE, P_WINDOW, pad=True, tile=6)


@pytest.fixture(scope="module")
def map_a(scene_a, model, work):
    return predict(scene_a, model, str(work / "a.tif"), P_STRIDE, P_WINDOW)


@pytest.fixture(scope="module")
def map_b(model, work):
    return predict(build_b(str(work / "B")), model, str(work / "b.tif"), B_STRIDE, B_WINDOW,
                   tile=5)


@pytest.fixture(scope="module")
def map_c(work):
    crop = mo.export_linear_model(str(work / "crop"), crop=True)
    return predict(build_c(str(work / "C")), crop, str(work / "c.tif"), C_STRIDE, tile=4,
                   window=256)


@pytest.fixture(scope="module")
def map_c_whole(map_c, work):
    """C again with ``--feed_whole_images --image_size 288``: the same
    cropping model fed 288 x 288 windows, of which it sees the centre 256."""
    from pipelines import predict_map

    out = str(work / "c_whole.tif")
    summary = predict_map.run(["--scene_path", map_c.folder, "--exported_model_dir",
                               str(work / "crop"), "--output_path", out, "--stride",
                               str(C_STRIDE), "--feed_whole_images", "--image_size", "288"])
    return Mapped(map_c.folder, summary, out, C_STRIDE, 288, False)


@pytest.fixture(scope="module")
def map_c_seeing_all(map_c, model, work):
    """C with the stand-in that sees all of its image, ``--image_size 288``."""
    return predict(map_c.folder, model, str(work / "c_all.tif"), C_STRIDE, 288, tile=4)


@pytest.fixture(scope="module")
def all_maps(map_p, map_p_pad, map_a, map_b, map_c):
    return {"P": map_p, "P pad": map_p_pad, "A": map_a, "B": map_b, "C": map_c}


# --------------------------------------------------------------------------- helpers

def both_predicted(m):
    return np.isfinite(m.values) & np.isfinite(m.expected.values)


def assert_map_is_the_oracles(m, least=4):
    """The same NaN pixels as the oracle's, at least ``least`` predicted,
    each the oracle's value."""
    assert nan_mismatches(m) == []
    assert both_predicted(m).sum() >= least
    assert value_mismatches(m) == []


def value_mismatches(m, pixels=None):
    """Map pixels predicted by both whose value is not the oracle's."""
    ok = both_predicted(m)
    found = []
    for i, j in (pixels if pixels is not None else np.argwhere(ok)):
        if ok[i, j] and abs(float(m.values[i, j]) - m.expected.values[i, j]) > TOL:
            found.append(((int(i), int(j)), float(m.values[i, j]), m.expected.values[i, j]))
    return found


def window_shift(m, i, j):
    """``(dr, dc)``: how far from the README's window the window whose
    stand-in output is the map's value lies (searched within 2 pixels, with
    the centre's own SMAP/GLDAS); None when no such window gives it."""
    o, s, w = m.oracle, m.stride, m.window
    top, left = o.origin(i, j, s, w)
    row, col = o.centre(i, j, s)
    smap, gldas = o.aux_lookup(SMAP, row, col)[0], o.aux_lookup(GLDAS, row, col)[0]
    shifts = sorted(itertools.product(range(-2, 3), repeat=2), key=lambda d: abs(d[0]) + abs(d[1]))
    for dr, dc in shifts:
        if abs(o.window_value(top + dr, left + dc, w, smap, gldas) - m.values[i, j]) <= TOL:
            return dr, dc
    return None


def shifted_windows(m, axis):
    """Predicted map pixels whose value came from a window shifted along
    ``axis`` (0: rows, 1: columns), or from no nearby window."""
    bad = []
    for i, j in np.argwhere(both_predicted(m)):
        shift = window_shift(m, int(i), int(j))
        if shift is None or shift[axis] != 0:
            bad.append(((int(i), int(j)), shift))
    return bad


def nan_mismatches(m):
    got, expected = np.isnan(m.values), np.isnan(m.expected.values)
    return [((int(i), int(j)), m.expected.causes[i, j])
            for i, j in np.argwhere(got != expected)]


# --------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("name,shape,stride", [("P", P_SHAPE, 6), ("A", A_SHAPE, 6),
                                               ("B", B_SHAPE, 8), ("C", C_SHAPE, 32)])
def test_map_is_floor_h_over_s_by_floor_w_over_s(all_maps, name, shape, stride):
    """P and A: neither side a multiple of s; B: H a multiple, W not; C: W a multiple, H not."""
    m = all_maps[name]
    rows, cols = shape[0] // stride, shape[1] // stride
    assert m.values.shape == (rows, cols)
    assert (m.summary["rows"], m.summary["columns"], m.summary["pixels"]) == (rows, cols,
                                                                             rows * cols)


@pytest.mark.parametrize("name", ["P", "A", "B", "C"])
def test_map_transform_is_the_scene_transform_scaled_by_the_stride_in_its_crs(all_maps, name):
    from affine import Affine
    from rasterio.crs import CRS

    m = all_maps[name]
    s = m.stride
    assert m.crs == CRS.from_user_input(mo.SCENE_CRS)
    assert m.transform == Affine(mo.XRES * s, 0, mo.X0, 0, -mo.YRES * s, mo.Y0)
    assert m.transform == m.oracle.transform @ Affine.scale(s)


@pytest.mark.parametrize("name", ["P", "P pad", "A", "B", "C"])
def test_window_top_row_is_i_s_plus_s_over_2_minus_w_over_2(all_maps, name):
    m = all_maps[name]
    assert both_predicted(m).sum() >= 6
    assert shifted_windows(m, 0) == []


@pytest.mark.parametrize("name", ["P", "P pad", "A", "B", "C"])
def test_window_left_column_is_j_s_plus_s_over_2_minus_w_over_2(all_maps, name):
    m = all_maps[name]
    assert both_predicted(m).sum() >= 6
    assert shifted_windows(m, 1) == []


def test_released_size_model_is_fed_its_256_window_and_the_readme_worked_example(map_c):
    """README: a model that sees only the centre 256 x 256 of a 512 x 512
    image is fed 256 x 256 windows; at s = 32, w = 256 pixel (5, 7) is the
    model on scene rows 48-303 and columns 112-367, centred on corner (176, 240)."""
    m = map_c
    assert m.summary["window"] == 256
    o = m.oracle
    smap, gldas = o.aux_lookup(SMAP, 176, 240)[0], o.aux_lookup(GLDAS, 176, 240)[0]
    expected = o.window_value(48, 112, 256, smap, gldas)
    assert o.bands[VV][48, 112] == 49 and o.bands[VV][303, 367] == 304  # the scene's last row
    assert o.bands[VH][48, 112] == 113 and o.bands[VH][303, 367] == 368
    assert abs(float(m.values[5, 7]) - expected) <= TOL
    assert np.isfinite(m.values).sum() == 8  # rows 4-5, columns 4-7: the windows inside
    assert value_mismatches(m) == [] and nan_mismatches(m) == []


def test_feed_whole_images_feeds_image_size_windows_centred_on_the_same_point(map_c_whole):
    """README: with --feed_whole_images the model is fed --image_size
    windows centred on the same point, even a model that sees only 256."""
    m, o = map_c_whole, map_c_whole.oracle
    assert m.summary["window"] == 288
    assert m.summary["nodata"]["outside_scene"] == m.expected.count("outside_scene")
    assert nan_mismatches(m) == []
    predicted = [tuple(p) for p in np.argwhere(np.isfinite(m.values))]
    assert predicted == [(4, j) for j in range(4, 8)]  # 288-pixel windows: row 4 only
    for i, j in predicted:  # the model sees their centre 256 x 256: the 256 window's value
        assert abs(float(m.values[i, j]) - o.value(i, j, C_STRIDE, 256)) <= TOL


def test_a_model_seeing_all_its_image_is_fed_image_size_windows(map_c_seeing_all):
    """README: a model found at load not to see only its centre 256 x 256
    is fed --image_size windows centred on the same point."""
    m = map_c_seeing_all
    assert m.summary["window"] == 288
    assert nan_mismatches(m) == [] and value_mismatches(m) == []
    assert [tuple(p) for p in np.argwhere(np.isfinite(m.values))] == [(4, j) for j in range(4, 8)]


def test_windows_ending_exactly_on_the_scene_edge_are_predicted(map_a, map_b):
    # A: map row 19's windows are scene rows 109-124 of 125
    assert mo.Oracle.origin(19, 0, 6, 16)[0] + 16 == A_SHAPE[0]
    row = [j for j in range(1, 29) if map_a.expected.causes[19, j] == "predicted"]
    assert len(row) >= 20
    assert np.isfinite(map_a.values[19, row]).all()
    assert value_mismatches(map_a, [(19, j) for j in row]) == []
    assert "outside_scene" not in set(map_a.causes[19, 1:29])
    # B: map column 12's windows are scene columns 95-104 of 105
    assert mo.Oracle.origin(0, 12, 8, 10)[1] + 10 == B_SHAPE[1]
    col = [i for i in range(12) if map_b.expected.causes[i, 12] == "predicted"]
    assert len(col) >= 6
    assert np.isfinite(map_b.values[col, 12]).all()
    assert value_mismatches(map_b, [(i, 12) for i in col]) == []
    assert "outside_scene" not in set(map_b.causes[1:11, 12])


def test_windows_not_wholly_inside_are_outside_scene_at_each_edge(map_p, map_b):
    for m, edges in ((map_p, {"top": (0, None), "left": (None, 0), "bottom": (19, None),
                              "right": (None, 29)}),
                     (map_b, {"top": (0, None), "left": (None, 0), "bottom": (11, None)})):
        rows, cols = m.values.shape
        for edge, (i, j) in edges.items():
            pixels = ([(i, jj) for jj in range(cols)] if j is None
                      else [(ii, j) for ii in range(rows)])
            for p in pixels:
                top, left = mo.Oracle.origin(*p, m.stride, m.window)
                assert not m.oracle.inside(top, left, m.window), (edge, p)
                assert m.causes[p] == "outside_scene", (edge, p, m.causes[p])
                assert np.isnan(m.values[p]), (edge, p)
        # the next row/column in is inside: here the cause is not outside_scene
        assert "outside_scene" not in set(m.causes[1:rows - 1, 1:cols - 1].ravel())
    # one pixel outside: B's top, left and bottom windows, P's right ones
    assert mo.Oracle.origin(0, 0, 8, 10) == (-1, -1) and 8 * 11 - 1 + 10 == B_SHAPE[0] + 1
    assert mo.Oracle.origin(0, 29, 6, 16)[1] + 16 == P_SHAPE[1] + 1
    assert map_b.expected.count("outside_scene") == map_b.summary["nodata"]["outside_scene"]
    assert map_p.expected.count("outside_scene") == map_p.summary["nodata"]["outside_scene"]


# --------------------------------------------------------------------------- nodata


@pytest.mark.parametrize("probe", [p for p in PROBES if p[4]], ids=lambda p: p[0])
def test_a_nodata_pixel_on_a_windows_edge_makes_it_band_nodata(map_p, probe):
    rule, band, target, offset, _ = probe
    pixel = probe_pixel(target, offset)
    top, left = mo.Oracle.origin(*target, P_STRIDE, P_WINDOW)
    assert top <= pixel[0] < top + P_WINDOW and left <= pixel[1] < left + P_WINDOW
    assert map_p.oracle.bands[band][pixel] == NODATA[band]
    assert map_p.expected.causes[target] == "band_nodata"
    assert map_p.expected.applies[target] == ["band_nodata"]
    assert np.isnan(map_p.values[target]), rule
    assert map_p.causes[target] == "band_nodata", rule


@pytest.mark.parametrize("probe", [p for p in PROBES if not p[4]], ids=lambda p: p[0])
def test_a_nodata_pixel_just_outside_a_window_leaves_it_predicted(map_p, probe):
    rule, band, target, offset, _ = probe
    pixel = probe_pixel(target, offset)
    assert map_p.oracle.bands[band][pixel] == NODATA[band]
    assert map_p.expected.causes[target] == "predicted"
    assert np.isfinite(map_p.values[target]), rule
    assert value_mismatches(map_p, [target]) == []
    # ... while the windows holding it are NaN
    held = [p for p in np.ndindex(*map_p.values.shape)
            if map_p.expected.causes[p] == "band_nodata"
            and abs(p[0] - target[0]) + abs(p[1] - target[1]) == 1]
    assert held and all(np.isnan(map_p.values[p]) for p in held), rule


@pytest.mark.parametrize("band", [b for b in BANDS if NODATA[b] is not None])
def test_a_nodata_pixel_of_any_band_makes_its_windows_band_nodata(map_p, band):
    o = map_p.oracle
    assert (o.bands[band] == NODATA[band]).any(), band
    bad = [tuple(p) for p in np.argwhere(o.bad)]
    hit = []  # windows wholly inside whose only nodata pixels are this band's
    for i, j in np.ndindex(*map_p.values.shape):
        top, left = o.origin(i, j, P_STRIDE, P_WINDOW)
        held = [p for p in bad if top <= p[0] < top + 16 and left <= p[1] < left + 16]
        if o.inside(top, left, 16) and held and all(o.bands[band][p] == NODATA[band]
                                                    for p in held):
            hit.append((i, j))
    assert hit, band
    for p in hit:
        assert np.isnan(map_p.values[p]) and map_p.causes[p] == "band_nodata", (band, p)


def test_nodata_is_each_bands_own_geotiff_nodata_value(map_p):
    o = map_p.oracle
    assert o.nodata[ANGLE] is None and o.nodata[CLAY] == 0
    assert len(set(v for v in o.nodata.values() if v is not None)) == len(BANDS) - 1
    checked = 0
    for band, r, c, value in P_DECOYS:
        assert o.bands[band][r, c] == value and value != o.nodata[band]
        for i, j in np.ndindex(*map_p.values.shape):
            top, left = o.origin(i, j, P_STRIDE, P_WINDOW)
            if top <= r < top + 16 and left <= c < left + 16 \
                    and map_p.expected.causes[i, j] == "predicted":
                assert np.isfinite(map_p.values[i, j]), (band, value, (i, j))
                assert map_p.causes[i, j] == "predicted"
                checked += 1
    assert checked >= 10
    # clay's nodata value, 0, is nodata
    target = PROBES[7][2]
    clay_pixel = probe_pixel(target, PROBES[7][3])
    assert o.bands[CLAY][clay_pixel] == 0
    held = [(i, target[1] + 1) for i in range(9, 12)]
    for p in held:
        assert map_p.expected.causes[p] == "band_nodata" and np.isnan(map_p.values[p])


def test_first_cause_that_applies_in_readme_order_pixel_by_pixel(map_a, map_p, map_p_pad, map_b):
    expected = map_a.expected
    pairs = set()
    for found in expected.applies.ravel():
        pairs.update(itertools.combinations(found, 2))
        if found:
            pairs.add((found[0], found[0]))
    possible = {(a, b) for a, b in itertools.combinations(mo.CAUSES, 2)
                if (a, b) not in (("smap_outside", "smap_nodata"),
                                  ("gldas_outside", "gldas_nodata"))}
    assert possible <= pairs, sorted(possible - pairs)  # every pair meets in scene A
    assert {(c, c) for c in mo.CAUSES} <= pairs  # and each cause is first somewhere
    for m in (map_a, map_p, map_p_pad, map_b):
        wrong = [(p, m.causes[p], m.expected.causes[p], m.expected.applies[p])
                 for p in np.ndindex(*m.values.shape) if m.causes[p] != m.expected.causes[p]]
        assert wrong == []


@pytest.mark.parametrize("name", ["P", "P pad", "A", "B", "C"])
def test_summary_counts_every_pixel_once_as_the_oracle_does(all_maps, name):
    m = all_maps[name]
    summary, expected = m.summary, m.expected
    nodata = summary["nodata"]
    assert summary["predicted"] == expected.count("predicted")
    for cause in mo.CAUSES:
        assert nodata.get(cause, 0) == expected.count(cause), cause
    assert all(v == 0 for k, v in nodata.items() if k not in mo.CAUSES), nodata
    assert summary["predicted"] + sum(nodata.values()) == summary["rows"] * summary["columns"]
    assert summary["accounted"] is True
    assert int(np.isfinite(m.values).sum()) == summary["predicted"]
    assert nan_mismatches(m) == []


# --------------------------------------------------------------------------- SMAP and GLDAS


@pytest.mark.parametrize("name", ["A", "B", "P", "C"])
def test_smap_and_gldas_are_the_pixels_holding_the_centre(all_maps, name):
    assert_map_is_the_oracles(all_maps[name])


def test_aux_values_are_divided_by_255(map_a):
    m, o = map_a, map_a.oracle
    seen = []
    for i, j in np.argwhere(both_predicted(m)):
        top, left = o.origin(i, j, 6, 16)
        row, col = o.centre(i, j, 6)
        smap, gldas = o.aux_lookup(SMAP, row, col)[0], o.aux_lookup(GLDAS, row, col)[0]
        fed = float(m.values[i, j]) - o.window_value(top, left, 16, 0, 0)
        assert abs(fed - (smap / 255 + 4 * gldas / 255)) <= TOL, ((i, j), fed, smap, gldas)
        seen.append((smap, gldas))
    smaps, gldases = zip(*seen)
    assert 0 in smaps and 255 in gldases and len(set(seen)) > 100


def test_a_centre_on_a_gldas_pixel_edge_takes_the_pixel_right_and_below(map_a, map_b):
    # every GLDAS lookup of A and B is on a pixel corner of GLDAS
    for m in (map_a, map_b):
        o = m.oracle
        for i, j in [(3, 5), (10, 10)]:
            row, col = o.centre(i, j, m.stride)
            r, c = mo.aux_coordinates(mo.SCENE_CRS, o.transform, mo.SCENE_CRS,
                                      o.aux[GLDAS][2], [row], [col])
            assert r[0] == round(r[0]) and c[0] == round(c[0])
        assert_map_is_the_oracles(m, 50)
    # the raster's own edges: on its top and left edge a centre is inside,
    # on its bottom and right edge outside
    for m, inside, outside in ((map_a, (3, 5), (2, 5)), (map_a, (5, 24), (5, 25)),
                               (map_b, (3, 1), (3, 0)), (map_b, (8, 4), (9, 4))):
        assert m.expected.causes[inside] == "predicted", inside
        assert np.isfinite(m.values[inside]) and value_mismatches(m, [inside]) == []
        assert "gldas_outside" in m.expected.applies[outside]
    for m, p in ((map_a, (2, 5)), (map_a, (5, 25)), (map_b, (9, 4))):
        assert m.expected.causes[p] == "gldas_outside" and np.isnan(m.values[p])
        assert m.causes[p] == "gldas_outside"


def test_smap_and_gldas_outside_and_nodata_are_their_causes(map_a):
    m = map_a
    for cause in ("smap_outside", "smap_nodata", "gldas_outside", "gldas_nodata"):
        pixels = m.expected.pixels(cause)
        assert len(pixels) >= 3, cause
        for p in pixels:
            assert np.isnan(m.values[p]) and m.causes[p] == cause, (cause, p)
        assert m.summary["nodata"][cause] == len(pixels)


def test_dem_is_trunc_clip_elevation_over_3000_times_255(map_p):
    o = map_p.oracle
    dem = o.bands[DEM][o.bands[DEM] != NODATA[DEM]]
    assert (dem > 3000).mean() > 0.05 and (dem < 0).mean() > 0.05
    assert (dem % 200 == 0).mean() > 0.3  # / 3000 * 255 whole: any lower scale truncates lower
    assert_map_is_the_oracles(map_p, 200)
    # the test can tell: a rounded, unclipped or undecoded DEM gives other values
    i, j = 8, 8
    top, left = o.origin(i, j, 6, 16)
    window = o.bands[DEM][top:top + 16, left:left + 16]
    rule = mo.dem_rule(window).mean()
    for other in (np.round(np.clip(window / 3000 * 255, 0, 255)).mean(),
                  np.trunc(window / 3000 * 255).mean(), window.mean()):
        assert abs(other - rule) * mo.WEIGHTS[DEM] > 10 * TOL


def test_pad_mode_zero_pads_the_windows_outside_the_scene(map_p_pad):
    m = map_p_pad
    assert m.summary["nodata"].get("outside_scene", 0) == 0
    assert "outside_scene" not in set(m.causes.ravel())
    rows, cols = m.values.shape
    edges = [(i, j) for i, j in np.ndindex(rows, cols) if i in (0, rows - 1) or j in (0, cols - 1)]
    predicted = [p for p in edges if m.expected.causes[p] == "predicted"]
    assert len(predicted) >= 80
    assert all(np.isfinite(m.values[p]) for p in predicted)
    assert value_mismatches(m, predicted) == []
    assert shifted_windows(m, 0) == [] and shifted_windows(m, 1) == []
    # a nodata pixel on each edge of the scene voids the windows holding it
    for band, r, c in P_EDGE_NODATA:
        held = [p for p in edges if m.expected.causes[p] == "band_nodata"
                and m.oracle.origin(*p, 6, 16)[0] <= r < m.oracle.origin(*p, 6, 16)[0] + 16
                and m.oracle.origin(*p, 6, 16)[1] <= c < m.oracle.origin(*p, 6, 16)[1] + 16]
        assert held, (band, r, c)
        assert all(np.isnan(m.values[p]) and m.causes[p] == "band_nodata" for p in held)


# --------------------------------------------------------------------------- cut_examples


def read_examples(folder):
    import tensorflow as tf

    path = os.path.join(folder, "data-00000-of-00001.tfrecord.gz")
    out = {}
    for record in tf.data.TFRecordDataset(path, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        f = example.features.feature
        sensor = f["sensor_id"].bytes_list.value[0].decode()
        out[sensor] = {k: (list(v.int64_list.value) or list(v.float_list.value)
                           or list(v.bytes_list.value)) for k, v in f.items()}
    with open(os.path.join(folder, "failures.jsonl")) as fh:
        failures = {r["sensor_id"]: r["reason"] for r in map(json.loads, fh)}
    return out, failures


def cut(folder, points, out):
    from pipelines import cut_examples

    csv = os.path.join(out + ".csv")
    with open(csv, "w") as fh:
        fh.write("sensor_id,lat,lon\n")
        for sensor, (lat, lon) in points.items():
            fh.write(f"{sensor},{lat!r},{lon!r}\n")
    cut_examples.run(["--scene_path", folder, "--points", csv, "--timestamp",
                      "2021-06-01T10:30:00Z", "--output_dir", out, "--size", str(CUT_SIZE)])
    return read_examples(out)


def point_near(row, col):
    lon, lat = mo.lonlat(row, col)
    return lat, lon


@pytest.fixture(scope="module")
def cut_p(scene_p, work):
    points = {}
    for name, ((r, c), (dr, dc)) in NEAR_CORNERS.items():
        points[f"near_{name}"] = point_near(r + dr, c + dc)
    for name, (fits, beyond) in EDGE_CORNERS.items():
        points[f"edge_{name}"], points[f"beyond_{name}"] = point_near(*fits), point_near(*beyond)
    for group in (NODATA_CORNERS, CLEAR_CORNERS):
        for name, corner in group.items():
            points[f"nodata_{name}"] = point_near(*corner)
    examples, failures = cut(scene_p, points, str(work / "cut_p"))
    return mo.Oracle(scene_p), points, examples, failures


@pytest.fixture(scope="module")
def cut_a(scene_a, work):
    points = {f"A_{r}_{c}": point_near(r, c) for r, c in A_CUTS}
    examples, failures = cut(scene_a, points, str(work / "cut_a"))
    return mo.Oracle(scene_a), points, examples, failures


@pytest.mark.parametrize("name", list(NEAR_CORNERS))
def test_example_is_centred_on_the_scene_corner_nearest_the_point(cut_p, name):
    o, points, examples, failures = cut_p
    (r, c), _ = NEAR_CORNERS[name]
    assert o.nearest_corner(*points[f"near_{name}"]) == (r, c)
    got = examples[f"near_{name}"]
    half = CUT_SIZE // 2
    # VV is row + 1, VH column + 1: the example's first row and column
    assert (got[VV][0] - 1, got[VH][0] - 1) == (r - half, c - half)
    assert (got[VV][-1] - 1, got[VH][-1] - 1) == (r + half - 1, c + half - 1)


def test_example_has_the_size_and_only_the_fields_a_scene_tells(cut_p):
    o, points, examples, failures = cut_p
    got = examples["near_down_right"]
    assert got["size"] == [CUT_SIZE]
    assert set(got) == {"sensor_id", "timestamp", "center_lat", "center_long", "size", *BANDS,
                        SMAP, GLDAS}
    lat, lon = points["near_down_right"]  # the point's place (to a pixel, float32)
    assert got["center_lat"][0] == pytest.approx(lat, abs=1e-4)
    assert got["center_long"][0] == pytest.approx(lon, abs=1e-4)
    for band in BANDS:
        assert len(got[band]) == CUT_SIZE * CUT_SIZE, band


@pytest.mark.parametrize("name", list(NEAR_CORNERS))
def test_example_bands_are_the_scene_pixels_and_its_aux_the_corners_pixels(cut_p, name):
    o, points, examples, failures = cut_p
    (r, c), _ = NEAR_CORNERS[name]
    bands, smap, gldas, why = o.example(r, c, CUT_SIZE)
    assert why == ""
    got = examples[f"near_{name}"]
    for band in BANDS:  # raw values: the DEM in metres
        assert np.array_equal(np.array(got[band]), bands[band].ravel()), band
    # the corner (odd row and column) lies on a GLDAS pixel corner: the pixel right and below
    gr, gc = mo.aux_coordinates(mo.SCENE_CRS, o.transform, mo.SCENE_CRS, o.aux[GLDAS][2], [r], [c])
    assert gr[0] == round(gr[0]) and gc[0] == round(gc[0])
    assert (got[SMAP], got[GLDAS]) == ([smap], [gldas])


@pytest.mark.parametrize("edge", list(EDGE_CORNERS))
def test_example_ending_on_the_scene_edge_is_cut_and_one_pixel_more_is_outside(cut_p, edge):
    o, points, examples, failures = cut_p
    fits, beyond = EDGE_CORNERS[edge]
    assert o.example(*fits, CUT_SIZE)[3] == ""
    assert o.example(*beyond, CUT_SIZE)[3] == "outside_scene"
    assert f"edge_{edge}" in examples and f"edge_{edge}" not in failures
    assert failures.get(f"beyond_{edge}") == "outside_scene"
    bands = o.example(*fits, CUT_SIZE)[0]
    assert np.array_equal(np.array(examples[f"edge_{edge}"][VV]), bands[VV].ravel())


@pytest.mark.parametrize("name", list(NODATA_CORNERS) + list(CLEAR_CORNERS))
def test_example_holding_a_nodata_pixel_is_band_nodata_one_pixel_away_is_cut(cut_p, name):
    o, points, examples, failures = cut_p
    corner = {**NODATA_CORNERS, **CLEAR_CORNERS}[name]
    expected = "band_nodata" if name in NODATA_CORNERS else ""
    assert o.example(*corner, CUT_SIZE)[3] == expected
    if expected:
        assert failures.get(f"nodata_{name}") == expected and f"nodata_{name}" not in examples
    else:
        assert f"nodata_{name}" in examples and f"nodata_{name}" not in failures


def test_example_failure_reasons_first_that_applies(cut_a):
    o, points, examples, failures = cut_a
    for (r, c), reason in A_CUTS.items():
        sensor = f"A_{r}_{c}"
        assert o.example(r, c, CUT_SIZE)[3] == reason, sensor
        if reason:
            assert failures.get(sensor) == reason and sensor not in examples, sensor
        else:
            assert sensor in examples and sensor not in failures
            bands, smap, gldas, _ = o.example(r, c, CUT_SIZE)
            assert (examples[sensor][SMAP], examples[sensor][GLDAS]) == ([smap], [gldas])
