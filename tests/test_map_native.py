"""predict_map on a scene whose bands each lie on their own grid and in
their own units (``native_scene``), against an independent restatement of
the rules (README: "Map your own scene", "Bands on their own grids: the
resampling rule", the encoding file; "predict_map": geometry and nodata).

The restatement imports nothing of ``transforms``, ``model_runner`` or
``pipelines``: whole rasters are read with rasterio, each map-grid pixel
centre is carried into each file's CRS with pyproj, point by point, and
into its pixels through its geotransform (exact rational arithmetic for any
point within 1e-6 pixel of an edge, so an edge point goes right of / below
the edge however the floats fall), then mosaicked, encoded, decoded and cut
into windows with numpy, and the stand-in model (``native_scene``) is run
on them: restated in numpy and checked against the SavedModel run by
TensorFlow itself. Only ``predict_map.main`` (the command) and, in the one
test labelled a library check, ``transforms.mapping.scene.read_region`` are
the code under test.

The stand-in model sees every pixel of every band of its 16 x 16 window
with its own weight and answers the fractional part of the weighted sum, so
one pixel of one band taken from the wrong source pixel, file or rounding
moves a map value by at least 2^-12 (against a tolerance of 1e-6, compared
modulo 1).
"""

import copy
import json
import math
import os
from fractions import Fraction

import numpy as np
import pytest

import native_scene as ns

TOL = 1e-6
#: the README's causes, in its order (the first that applies is counted)
CAUSES = ("outside_scene", "band_nodata", "smap_outside", "smap_nodata", "gldas_outside",
          "gldas_nodata")


# --------------------------------------------------------------------------- the restatement

class Raster:
    """One file's band, read whole: values (float64), where it holds a value
    (not its nodata value, finite, not masked by its GDAL mask), its grid."""

    def __init__(self, path: str):
        import rasterio
        from pyproj import CRS

        with rasterio.open(path) as ds:
            raw = ds.read(1)
            masked = ds.read_masks(1) == 0  # an internal mask (and the nodata value)
            self.integer = np.dtype(ds.dtypes[0]).kind in "iu"
            self.nodata = ds.nodata
            self.transform = ds.transform
            self.crs = CRS.from_wkt(ds.crs.to_wkt())
        self.values = raw.astype(np.float64)
        self.valid = np.isfinite(self.values) & ~masked
        if self.nodata is not None and not math.isnan(self.nodata):
            self.valid &= self.values != self.nodata
        self.shape = raw.shape
        assert self.transform.b == 0 and self.transform.d == 0, "north-up files only"


class Grid:
    """The map's grid (read from a GeoTIFF)."""

    def __init__(self, path: str):
        import rasterio
        from pyproj import CRS

        with rasterio.open(path) as ds:
            self.transform, self.shape = ds.transform, ds.shape
            self.crs = CRS.from_wkt(ds.crs.to_wkt())


def _transformer(source, target):
    from pyproj import Transformer

    return Transformer.from_crs(source, target, always_xy=True)


def carry(grid: Grid, rows, cols, raster: Raster):
    """Map-grid points (pixel coordinates, corners at integers) as pixel
    coordinates of ``raster``: ``(rows, cols)`` fractional, and ``(row_i,
    col_i)``, the pixel holding each (the floor; decided exactly for points
    within 1e-6 pixel of an edge: on an edge, the pixel right of / below it)."""
    g, t = grid.transform, raster.transform
    rows, cols = np.asarray(rows, np.float64), np.asarray(cols, np.float64)
    x, y = g.a * cols + g.c, g.e * rows + g.f
    same = grid.crs == raster.crs
    if not same:
        x, y = (np.asarray(v) for v in _transformer(grid.crs, raster.crs).transform(x, y))
    fr, fc = (y - t.f) / t.e, (x - t.c) / t.a
    row_i, col_i = np.floor(fr), np.floor(fc)
    for frac, out, axis in ((fr, row_i, 0), (fc, col_i, 1)):
        near = np.flatnonzero(np.isfinite(frac) & (np.abs(frac - np.round(frac)) < 1e-6))
        if not near.size:
            continue
        # what the exact coordinate depends on: the grid row / column (same CRS: the
        # point's coordinate from the map grid's transform) or PROJ's answer as given
        keys = (rows if axis == 0 else cols) if same else (y if axis == 0 else x)
        unique, inverse = np.unique(np.ravel(keys)[near], return_inverse=True)
        origin, size = (t.f, t.e) if axis == 0 else (t.c, t.a)
        scale, shift = (g.e, g.f) if axis == 0 else (g.a, g.c)
        floors = []
        for key in unique:
            coord = (Fraction(scale) * Fraction(float(key)) + Fraction(shift) if same
                     else Fraction(float(key)))
            floors.append(math.floor((coord - Fraction(origin)) / Fraction(size)))
        out.flat[near] = np.asarray(floors, np.float64)[inverse]
    return fr, fc, row_i, col_i


def nearest(grid: Grid, rows, cols, rasters):
    """The README's nearest rule and mosaic: ``(values, held, covered)``: the
    value of the pixel holding each point in the first file (mosaic order)
    that holds a value there; ``covered``: some file's pixels hold the point."""
    values = np.zeros(np.shape(rows))
    held = np.zeros(np.shape(rows), bool)
    covered = np.zeros(np.shape(rows), bool)
    for raster in rasters:
        _, _, ri, ci = carry(grid, rows, cols, raster)
        h, w = raster.shape
        inside = np.isfinite(ri) & np.isfinite(ci) & (ri >= 0) & (ci >= 0) & (ri < h) & (ci < w)
        covered |= inside
        take = inside & ~held
        r, c = ri[take].astype(int), ci[take].astype(int)
        ok = raster.valid[r, c]
        idx = tuple(a[ok] for a in np.nonzero(take))
        values[idx] = raster.values[r[ok], c[ok]]
        held[idx] = True
    return values, held, covered


def bilinear(grid: Grid, rows, cols, rasters):
    """``--resampling bilinear``, as restated from the README and
    ``transforms/mapping/scene/sources.py``: a point at fractional pixel
    coordinates ``(fr, fc)`` of a file (pixel ``(r, c)`` spans ``[r, r+1)``,
    its centre at ``+0.5``) takes the four pixels whose centres surround it,
    rows ``r0 = floor(fr - 0.5)`` and ``r0 + 1``, columns ``c0 = floor(fc -
    0.5)`` and ``c0 + 1``, as ``(1 - wr) ((1 - wc) v00 + wc v01) + wr ((1 -
    wc) v10 + wc v11)`` with ``wr = fr - 0.5 - r0``, ``wc = fc - 0.5 - c0``.
    The file gives a value only where all four pixels lie inside it and hold
    a value, even one weighted 0 (a point exactly on a pixel's centre still
    needs the row below and the column right of it); otherwise the next file
    of the mosaic is asked; no file: nodata. The value is encoded after
    interpolation."""
    values = np.zeros(np.shape(rows))
    held = np.zeros(np.shape(rows), bool)
    for raster in rasters:
        fr, fc, _, _ = carry(grid, rows, cols, raster)
        r, c = fr - 0.5, fc - 0.5
        r0, c0 = np.floor(r), np.floor(c)
        wr, wc = r - r0, c - c0
        h, w = raster.shape
        take = ~held & np.isfinite(r0) & np.isfinite(c0) & (r0 >= 0) & (c0 >= 0) & (
            r0 + 1 < h) & (c0 + 1 < w)
        a, b = r0[take].astype(int), c0[take].astype(int)
        four = [(a, b), (a, b + 1), (a + 1, b), (a + 1, b + 1)]
        ok = np.all([raster.valid[p] for p in four], axis=0)
        v00, v01, v10, v11 = (raster.values[p] for p in four)
        wr_, wc_ = wr[take], wc[take]
        mixed = (1 - wr_) * ((1 - wc_) * v00 + wc_ * v01) + wr_ * ((1 - wc_) * v10 + wc_ * v11)
        idx = tuple(x[ok] for x in np.nonzero(take))
        values[idx] = mixed[ok]
        held[idx] = True
    return values, held


def encode(values, entry):
    """README: ``clip(floor(v * scale + offset + 0.5), min, max)`` in float64."""
    return np.clip(np.floor(np.asarray(values, np.float64) * entry["scale"] + entry["offset"]
                            + 0.5), entry["min"], entry["max"])


def dem_rule(elevation):
    """README: the DEM goes to the model as ``trunc(clip(elevation / 3000 * 255, 0, 255))``."""
    return np.trunc(np.clip(np.asarray(elevation, np.float64) / 3000.0 * 255.0, 0.0, 255.0))


class Restated:
    """The map of a scene by the README's rules, restated.

    Args:
        files: band -> its files in mosaic order.
        grid_path: the GeoTIFF whose grid the map takes.
        encoding: band -> ``{"scale", "offset", "min", "max"}``.
        resampling: ``nearest`` or ``bilinear``.
        on_grid: bands read as they lie (one file on the map's grid).
        mosaic_order: ``reversed`` swaps every band's files (a test's sabotage).
        edge: ``left`` sends edge points to the pixel left of / above the
            edge (a test's sabotage).
        rounding: ``np.round`` instead of ``floor(x + 0.5)`` (a test's sabotage).
    """

    def __init__(self, files, grid_path, encoding, resampling="nearest", on_grid=(),
                 mosaic_order=None, edge=None, rounding=None):
        self.grid = Grid(grid_path)
        self.encoding = encoding
        h, w = self.grid.shape
        rows, cols = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
        self.planes, self.bad = {}, np.zeros((h, w), bool)
        self.raw = {}
        for band in ns.BANDS:
            rasters = [Raster(p) for p in files[band]]
            if mosaic_order == "reversed":
                rasters = rasters[::-1]
            if band in on_grid:
                assert len(rasters) == 1 and rasters[0].shape == (h, w)
                values, held = rasters[0].values, rasters[0].valid
            elif resampling == "bilinear":
                values, held = bilinear(self.grid, rows, cols, rasters)
            else:
                r, c = rows, cols
                if edge == "left":  # a point on an edge belongs to the pixel before it
                    r, c = np.nextafter(rows, -np.inf), np.nextafter(cols, -np.inf)
                values, held, _ = nearest(self.grid, r, c, rasters)
            self.raw[band] = np.where(held, values, np.nan)
            if (band not in encoding and band not in on_grid and resampling == "bilinear"
                    and any(raster.integer for raster in rasters)):
                # an integer band interpolated without an encoding: made the dataset's
                # integers by the encoding's own rounding (identity scale and offset)
                values = np.floor(values + 0.5)
            if band in encoding:
                values = (np.clip(rounding(values * encoding[band]["scale"]
                                           + encoding[band]["offset"]),
                                  encoding[band]["min"], encoding[band]["max"])
                          if rounding is not None else encode(values, encoding[band]))
            values = np.where(held, values, 0.0)
            self.planes[band] = dem_rule(values) if band == ns.DEM else values
            self.bad |= ~held
        self.aux = {name: nearest(self.grid, *self.centre_points(), [Raster(p) for p in
                                                                     files[name]])
                    for name in (ns.SMAP, ns.GLDAS)}

    def centre_points(self):
        """Every map pixel's centre point ``(i s + s/2, j s + s/2)``, scene pixel coordinates."""
        s = ns.STRIDE
        rows, cols = self.shape
        i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        return i * s + s / 2, j * s + s / 2

    @property
    def shape(self):
        return self.grid.shape[0] // ns.STRIDE, self.grid.shape[1] // ns.STRIDE

    def aux_value(self, name, i, j):
        """``(encoded value, "")`` of SMAP/GLDAS at map pixel ``(i, j)``'s centre, or
        ``(None, cause)``."""
        values, held, covered = self.aux[name]
        prefix = name.split("_")[0]
        if not covered[i, j]:
            return None, f"{prefix}_outside"
        if not held[i, j]:
            return None, f"{prefix}_nodata"
        return float(encode(values[i, j], self.encoding[name])), ""

    def map(self):
        """``(values, causes)``: the stand-in's output on each map pixel's
        window (NaN where a cause applies), and the first cause that applies."""
        s, w = ns.STRIDE, ns.WINDOW
        h, wd = self.grid.shape
        rows, cols = self.shape
        out = np.full((rows, cols), np.nan)
        causes = np.full((rows, cols), "predicted", dtype=object)
        image = np.stack([self.planes[b] for b in ns.IMAGE], axis=-1)
        low = np.stack([self.planes[b] for b in ns.LOW_RES], axis=-1)
        batch, where = ([], [], []), []
        for i in range(rows):
            for j in range(cols):
                top, left = i * s + s // 2 - w // 2, j * s + s // 2 - w // 2
                found = []
                if top < 0 or left < 0 or top + w > h or left + w > wd:
                    found.append("outside_scene")
                elif self.bad[top:top + w, left:left + w].any():
                    found.append("band_nodata")
                aux = []
                for name in (ns.SMAP, ns.GLDAS):
                    value, cause = self.aux_value(name, i, j)
                    found += [cause] if cause else []
                    aux.append(value)
                if found:
                    causes[i, j] = found[0]
                    continue
                batch[0].append(image[top:top + w, left:left + w].astype(np.float32))
                batch[1].append(low[top:top + w, left:left + w].astype(np.float32))
                batch[2].append([np.float32(aux[0] / 255.0), np.float32(aux[1] / 255.0)])
                where.append((i, j))
        self.batch = tuple(np.asarray(b, np.float32) for b in batch)
        if where:
            predicted = ns.model_output(*self.batch)
            for (i, j), v in zip(where, predicted):
                out[i, j] = v
        return out, causes


def circular(a, b):
    """|a - b| modulo 1 (the stand-in answers a fractional part)."""
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)) % 1.0
    return np.minimum(d, 1.0 - d)


def map_differences(got, expected):
    """Pixels where two maps differ: NaN in one only, or values further than TOL apart."""
    nan_got, nan_expected = np.isnan(got), np.isnan(expected)
    found = [((int(i), int(j)), float(got[i, j]), float(expected[i, j]))
             for i, j in np.argwhere(nan_got != nan_expected)]
    both = ~nan_got & ~nan_expected
    d = np.where(both, circular(np.where(both, got, 0), np.where(both, expected, 0)), 0)
    found += [((int(i), int(j)), float(got[i, j]), float(expected[i, j]))
              for i, j in np.argwhere(d > TOL)]
    return found


def counts_of(causes):
    return {c: int((causes == c).sum()) for c in ("predicted",) + CAUSES}


# --------------------------------------------------------------------------- the command

def predict(scene_path, model, out, *extra):
    """``predict_map.main`` on the scene: ``(summary, map values, tags)``."""
    import rasterio

    from pipelines import predict_map

    argv = ["--scene_path", scene_path, "--exported_model_dir", model, "--output_path", out,
            "--stride", str(ns.STRIDE), "--image_size", str(ns.WINDOW), "--tile_size", "9",
            "--batch_size", "16", "--progress_seconds", "0", *extra]
    assert predict_map.main(argv) == 0
    with open(os.path.splitext(out)[0] + ".summary.json") as f:
        summary = json.load(f)
    with rasterio.open(out) as ds:
        return summary, ds.read(1), ds.tags()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("map_native")


@pytest.fixture(scope="module")
def scene(work):
    return ns.write_native_scene(str(work))


@pytest.fixture(scope="module")
def model(work):
    return ns.export_model(str(work / "model"))


@pytest.fixture(scope="module")
def restated(scene):
    """The restated map on the template grid, nearest rule."""
    r = Restated(scene.files, scene.grid_like, ns.ENCODING)
    return r, *r.map()


@pytest.fixture(scope="module")
def nearest_map(scene, model, work):
    return predict(scene.scene, model, str(work / "maps" / "nearest.tif"),
                   "--grid_like", scene.grid_like, "--encoding", scene.encoding)


# --------------------------------------------------------------------------- tests

def test_the_restated_model_is_the_model(restated, model):
    """The numpy stand-in answers as the SavedModel does (TensorFlow itself)
    on the restated windows: what the restatement compares is the model."""
    r, values, _ = restated
    assert len(r.batch[0]) >= 300
    by_tf = ns.run_saved_model(model, *r.batch)
    assert circular(by_tf, ns.model_output(*r.batch)).max() <= TOL


def test_the_scene_is_awkward(scene, restated):
    """The scene exercises what it is meant to: a restatement that swaps
    the mosaic's order, sends edge points to the left/upper pixel, or rounds
    half to even instead of ``floor(x + 0.5)`` gives another map; every
    NaN cause the scene plants occurs; B's file fills A's holes."""
    r, values, causes = restated
    counts = counts_of(causes)
    assert counts["predicted"] >= 300, counts
    for cause in CAUSES:
        assert counts[cause] > 0, (cause, counts)
    for sabotage in ({"mosaic_order": "reversed"}, {"edge": "left"}, {"rounding": np.round}):
        other, _ = Restated(scene.files, scene.grid_like, ns.ENCODING, **sabotage).map()
        assert len(map_differences(other, values)) >= 20, sabotage
    # the holes A leaves in the overlap are B's values, not nodata
    for band, (row, col) in ((ns.B4, (103, 128)), (ns.B8, (145, 130)), (ns.B11, (33, 124))):
        raster = Raster(scene.files[band][0])
        _, _, ri, ci = carry(r.grid, [row + 0.5], [col + 0.5], raster)
        assert not raster.valid[int(ri[0]), int(ci[0])]
        assert not np.isnan(r.raw[band][row, col])
    # map-grid pixel centres exactly on pixel edges (the right/below rule decides them)
    rows, cols = np.meshgrid(np.arange(ns.HEIGHT) + 0.5, np.arange(ns.WIDTH) + 0.5,
                             indexing="ij")
    for path in scene.files[ns.B4] + scene.files[ns.ANGLE]:
        fr, fc, _, _ = carry(r.grid, rows, cols, Raster(path))
        assert ((fr == np.round(fr)) | (fc == np.round(fc))).sum() > 10000, path
    # clay stops short of the east edge
    assert np.isnan(r.raw[ns.CLAY][:, -1]).all() and not np.isnan(r.raw[ns.CLAY][:, 0]).any()


def test_nearest_from_the_folder_is_the_exact_rule(nearest_map, restated):
    """Pixel for pixel (NaN where NaN, values within 1e-6), with the causes counted."""
    summary, values, _ = nearest_map
    r, expected, causes = restated
    assert values.shape == expected.shape
    assert map_differences(values, expected) == []
    expected_counts = counts_of(causes)
    assert summary["predicted"] == expected_counts["predicted"]
    assert {c: summary["nodata"].get(c, 0) for c in CAUSES} == {
        c: expected_counts[c] for c in CAUSES}


def test_nearest_from_stac_is_the_same_map(scene, model, work, nearest_map, restated):
    """The same files named by a static STAC ItemCollection (the S2 tiles as
    two items, A first): the same map."""
    import importlib.util

    if importlib.util.find_spec("transforms.mapping.scene.stac") is None:
        pytest.skip("no STAC reader (transforms/mapping/scene/stac.py) yet")
    summary, values, _ = predict(scene.stac, model, str(work / "maps" / "stac.tif"),
                                 "--grid_like", scene.grid_like, "--encoding", scene.encoding)
    assert map_differences(values, restated[1]) == []
    assert map_differences(values, nearest_map[1]) == []


def test_nearest_with_the_default_grid(scene, model, work):
    """The default ``--grid_like`` (sentinel_1_VV, the shifted larger grid):
    VV and VH read as they lie, the 12 other bands resampled by the nearest
    rule onto it."""
    summary, values, _ = predict(scene.scene, model, str(work / "maps" / "default_grid.tif"),
                                 "--encoding", scene.encoding)
    s1 = (ns.VV, ns.VH)
    expected, causes = Restated(scene.files, scene.files[ns.VV][0], ns.ENCODING,
                                on_grid=s1).map()
    assert counts_of(causes)["predicted"] >= 300
    assert map_differences(values, expected) == []
    assert summary["grid_like"] == ns.VV
    assert summary["resampled_bands"] == [b for b in ns.BANDS if b not in s1]


def test_the_summary_and_tags_record_how_the_scene_reached_the_map(nearest_map, scene):
    summary, _, tags = nearest_map
    expected = {"grid_like": scene.grid_like, "resampling": "nearest",
                "resampled_bands": list(ns.BANDS), "encoding": ns.ENCODING}
    for key, value in expected.items():
        assert summary[key] == value, key
        tag = tags[key]
        assert (tag if isinstance(value, str) else json.loads(tag)) == value, key


#: the bilinear run's encoding: the scene's, and sand and silt (int16 g/kg) by identity
#: (the same as no entry: an interpolated integer band is rounded as an encoding rounds,
#: checked on its own below)
IDENTITY = {"scale": 1, "offset": 0, "min": -32768, "max": 32767}


@pytest.fixture(scope="module")
def bilinear_map(scene, model, work):
    encoding = str(work / "encoding_bilinear.json")
    with open(encoding, "w") as f:
        json.dump({**ns.ENCODING, ns.SAND: IDENTITY, ns.SILT: IDENTITY}, f)
    return predict(scene.scene, model, str(work / "maps" / "bilinear.tif"),
                   "--encoding", encoding, "--resampling", "bilinear")


def test_bilinear_with_the_default_grid(scene, bilinear_map):
    """``--resampling bilinear`` and the default ``--grid_like``
    (sentinel_1_VV): VV and VH are on the map's grid and read as they lie;
    the 12 others are interpolated (``bilinear``'s rule)."""
    summary, values, tags = bilinear_map
    encoding = {**ns.ENCODING, ns.SAND: IDENTITY, ns.SILT: IDENTITY}
    s1 = (ns.VV, ns.VH)
    r = Restated(scene.files, scene.files[ns.VV][0], encoding, "bilinear", on_grid=s1)
    expected, causes = r.map()
    assert counts_of(causes)["predicted"] >= 300
    assert map_differences(values, expected) == []
    assert {c: summary["nodata"].get(c, 0) for c in CAUSES} == {
        c: counts_of(causes)[c] for c in CAUSES}
    assert summary["resampling"] == "bilinear" and summary["grid_like"] == ns.VV
    assert summary["resampled_bands"] == [b for b in ns.BANDS if b not in s1]
    # nearest would not do: the interpolation shows
    near, _ = Restated(scene.files, scene.files[ns.VV][0], encoding, on_grid=s1).map()
    assert len(map_differences(near, expected)) >= 20


def test_bilinear_integer_band_without_encoding_is_rounded_as_encoded(scene):
    """Library check: sand (int16 g/kg, Homolosine, no encoding entry)
    interpolated onto the map's grid becomes ``floor(v + 0.5)``."""
    from transforms.mapping.geometry import Region
    from transforms.mapping.scene import read_encoding, read_region, read_scene

    lib = read_scene(scene.scene, ns.VV, read_encoding(scene.encoding), "bilinear")
    h, w = lib.grid.height, lib.grid.width
    values, nodata = read_region(lib.bands[ns.SAND], lib.grid, Region(0, 0, h, w))
    grid = Grid(scene.files[ns.VV][0])
    rows, cols = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    raw, held = bilinear(grid, rows, cols, [Raster(scene.files[ns.SAND][0])])
    assert np.array_equal(nodata, ~held)
    assert np.array_equal(values[held], np.floor(raw[held] + 0.5))


def test_gdal_default_warp_is_not_the_rule_but_an_exact_one_is(scene, restated):
    """The pitfall the README warns of, on this scene's geographic DEM
    warped onto the UTM map grid. GDAL's nearest warp through rasterio's
    ``reproject`` uses GDAL's approximate transformer (error threshold 0.125
    source pixel) and picks another DEM pixel than the exact rule for some
    map pixels, all within a hair (< 0.01 pixel) of a DEM pixel edge; a map
    made from that DEM would fail this file's comparison. rasterio 1.4
    hard-codes that threshold: its ``reproject`` takes ``tolerance=0``
    silently (passed on as a warp option GDAL ignores) and still differs;
    from rasterio 1.5 ``tolerance`` is an argument and 0 must agree.
    ``WarpedVRT(..., tolerance=0)`` is exact, but rasterio 1.4 refuses it
    with an explicit transform ("pfnTransformer is NULL"): there a
    tolerance of 1e-9 pixel stands in. The exact warp agrees with the
    restatement everywhere, and so does the map's own resampled DEM
    (library check: ``transforms.mapping.scene.read_region``).
    """
    import inspect

    import rasterio
    from rasterio.crs import CRS
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.warp import reproject

    r = restated[0]
    exact = r.raw[ns.DEM]
    held = ~np.isnan(exact)
    h, w = r.grid.shape
    rows, cols = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    fr, fc, _, _ = carry(r.grid, rows, cols, Raster(scene.files[ns.DEM][0]))
    edge = np.minimum(np.abs(fr - np.round(fr)), np.abs(fc - np.round(fc)))
    grid_crs = CRS.from_wkt(r.grid.crs.to_wkt())
    honours_tolerance = "tolerance" in inspect.signature(reproject).parameters

    def warped(ds, **kwargs):
        out = np.full((h, w), np.nan, np.float32)
        reproject(rasterio.band(ds, 1), out, dst_transform=r.grid.transform, dst_crs=grid_crs,
                  resampling=Resampling.nearest, dst_nodata=np.nan, **kwargs)
        return out

    def moved(dem):
        return held & ~(dem == exact)

    with rasterio.open(scene.files[ns.DEM][0]) as ds:
        approx = warped(ds)
        assert moved(approx).sum() >= 20
        assert edge[moved(approx)].max() < 0.01
        # a map made from GDAL's default warp would not pass this file's comparison
        approx_held = ~np.isnan(approx)
        swapped = copy.copy(r)
        swapped.planes = {**r.planes, ns.DEM: dem_rule(np.where(
            approx_held, encode(np.where(approx_held, approx, 0), ns.ENCODING[ns.DEM]), 0))}
        swapped.bad = np.zeros_like(r.bad)
        for band in ns.BANDS:
            swapped.bad |= np.isnan(r.raw[band]) if band != ns.DEM else ~approx_held
        assert len(map_differences(swapped.map()[0], restated[1])) >= 20
        # tolerance=0: ignored by rasterio 1.4's reproject, honoured from 1.5
        assert (moved(warped(ds, tolerance=0)).sum() == 0) == honours_tolerance
        try:
            vrt = WarpedVRT(ds, crs=grid_crs, transform=r.grid.transform, height=h, width=w,
                            resampling=Resampling.nearest, tolerance=0, nodata=np.nan)
        except rasterio._err.CPLE_BaseError:  # rasterio 1.4: "pfnTransformer is NULL"
            vrt = WarpedVRT(ds, crs=grid_crs, transform=r.grid.transform, height=h, width=w,
                            resampling=Resampling.nearest, tolerance=1e-9, nodata=np.nan)
        with vrt:
            exact_gdal = vrt.read(1)
    assert moved(exact_gdal).sum() == 0
    assert np.array_equal(np.isnan(exact_gdal), ~held)

    # library check: the map's own DEM on its grid
    from transforms.mapping.geometry import Region
    from transforms.mapping.scene import read_encoding, read_region, read_scene

    lib = read_scene(scene.scene, scene.grid_like, read_encoding(scene.encoding))
    values, nodata = read_region(lib.bands[ns.DEM], lib.grid, Region(0, 0, h, w))
    assert np.array_equal(nodata, ~held)
    assert np.array_equal(values[held], encode(exact_gdal[held], ns.ENCODING[ns.DEM]))
