"""predict_map's outputs as a GIS user and a re-run see them: the COG's unit,
tags and predictor; the summary's CRS, bounds and values; the quicklook's
axes, CRS, scale bar, colour bar and saturated maps; where outputs may go;
the map, quicklook and summary replaced together or not at all.

One small scene is mapped once (``mapped``, relative paths from another
working folder); the quicklook and the replacement are tested on the
writer directly, with blocks made here.
"""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from transforms.mapping import writer
from transforms.mapping.geometry import MapGeometry
from transforms.mapping.scene import Grid, Scene
from transforms.synthetic.scene import SceneConfig, make_scene

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEIGHT, WIDTH, STRIDE = 384, 448, 32  # a 12 x 14 map, 24 pixels predicted, 10 m pixels


def run_cli(argv, cwd=REPO):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "pipelines.predict_map", *argv], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.strip() and " INFO " not in line]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outputs")
    make_scene(SceneConfig(str(folder / "scene"), HEIGHT, WIDTH, seed=11))
    return folder


@pytest.fixture(scope="module")
def mapped(work, reference_model):
    """``(map path, stdout)`` of one run given relative paths, from ``work``."""
    rc, stdout, stderr = run_cli(["--scene_path", "scene", "--exported_model_dir",
                                  os.path.relpath(reference_model, work), "--output_path",
                                  "maps/map.tif", "--stride", str(STRIDE)], cwd=str(work))
    assert rc == 0, stderr[-3000:]
    return str(work / "maps" / "map.tif"), stdout


def test_the_cog_has_its_unit_numeric_stride_absolute_sources_and_float_predictor(
        work, mapped, reference_model):
    import rasterio

    with rasterio.open(mapped[0]) as ds:
        tags, units = ds.tags(), ds.units
        structure, pixel = ds.tags(ns="IMAGE_STRUCTURE"), ds.transform.a
    assert units == ("m3/m3",)
    assert tags["stride_m"] == "320" and float(tags["stride_m"]) == pixel
    assert tags["map_units"] == "m"
    assert os.path.isabs(tags["model"]) and os.path.isabs(tags["scene"])  # given relative
    assert os.path.realpath(tags["model"]) == os.path.realpath(reference_model)
    assert os.path.realpath(tags["scene"]) == os.path.realpath(work / "scene")
    assert structure["COMPRESSION"] == "DEFLATE" and structure["LAYOUT"] == "COG"
    assert structure["PREDICTOR"] == "3"  # floating point


def test_the_summary_has_the_crs_bounds_and_the_values_numpy_finds(work, mapped):
    import rasterio

    with rasterio.open(mapped[0]) as ds:
        values, bounds, crs = ds.read(1), ds.bounds, ds.crs
    summary = json.load(open(work / "maps" / "map.summary.json"))
    assert summary["crs"] == "EPSG:32633" and crs.to_epsg() == 32633
    assert summary["bounds"] == {"left": bounds.left, "bottom": bounds.bottom,
                                 "right": bounds.right, "top": bounds.top}
    finite = values[np.isfinite(values)].astype(np.float64)
    assert finite.size == summary["predicted"] == 24
    got = summary["values"]
    assert got["min"] == finite.min() and got["max"] == finite.max()
    assert got["mean"] == pytest.approx(finite.mean(), rel=1e-12)
    assert summary["units"] == "m3/m3" and summary["accounted"]
    assert os.path.realpath(summary["scene_path"]) == os.path.realpath(work / "scene")
    stdout = mapped[1]
    assert f"min {finite.min():.3f}, mean {finite.mean():.3f}, max {finite.max():.3f}" in stdout
    assert "CRS EPSG:32633" in stdout and "Summary: maps/map.summary.json" in stdout


def test_summary_values_are_null_when_nothing_is_predicted(tmp_path):
    from transforms.mapping.config import MapConfig
    from transforms.mapping.job import _write_summary

    out = str(tmp_path / "empty.tif")
    staged = writer.write_map(blocks(np.full((6, 8), np.nan, np.float32)), SCENE, GEOMETRY, out,
                              TAGS)
    config = MapConfig(scene_path=str(tmp_path), output_path=out, exported_model_dir="m")
    _write_summary(staged, config, GEOMETRY, 0.0, {})
    summary = json.load(open(tmp_path / "empty.summary.json"))
    assert summary["values"] == {"min": None, "mean": None, "max": None}
    assert summary["predicted"] == 0 and summary["nodata"]["band_nodata"] == 48
    assert summary["accounted"] and summary["crs"] == "EPSG:32633"


# --- the writer on blocks made here: a 6 x 8 map of 320 m pixels in UTM 33N

SCENE = Scene("scene", {}, {}, Grid(
    'PROJCS["WGS 84 / UTM zone 33N",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",'
    '6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
    'PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],'
    'PARAMETER["central_meridian",15],PARAMETER["scale_factor",0.9996],'
    'PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1],'
    'AUTHORITY["EPSG","32633"]]', (10.0, 0.0, 500000.0, 0.0, -10.0, 5300000.0), 192, 256))
GEOMETRY = MapGeometry(192, 256, 32, 256, 4)
TAGS = {"stride": "32", "stride_m": "320", "map_units": "m"}


def blocks(values):
    """``(tile, block, causes)`` of each tile of ``GEOMETRY`` (NaN: band nodata)."""
    for t in GEOMETRY.tiles():
        block = values[t.row:t.row + t.height, t.col:t.col + t.width].astype(np.float32)
        yield t, block, np.where(np.isnan(block), 2, 0).astype(np.uint8)


def smooth(shift=0.0):
    rows, cols = np.mgrid[0:6, 0:8]
    values = (0.1 + 0.04 * rows + 0.02 * cols + shift).astype(np.float32)
    values[0, 0] = np.nan
    return values


def write(path, values):
    staged = writer.write_map(blocks(values), SCENE, GEOMETRY, path, TAGS)
    staged.commit(writer.summary_file(path), {"values": staged.values})
    return staged


def drawn(monkeypatch, tmp_path, values):
    """The quicklook's figure (kept as it is saved) and its PNG's pixels."""
    from matplotlib.figure import Figure
    from matplotlib.image import imread

    figures, save = [], Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (figures.append(fig),
                                                                  save(fig, *a, **k))[1])
    write(str(tmp_path / "q.tif"), values)
    return figures[-1], imread(str(tmp_path / "q.png"))[..., :3]


def red_share(pixels):
    return float(np.mean((pixels[..., 0] > 0.9) & (pixels[..., 1] < 0.1) & (pixels[..., 2] < 0.1)))


def test_the_quicklook_has_map_coordinates_the_crs_a_scale_bar_and_the_stride(
        monkeypatch, tmp_path):
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    fig, pixels = drawn(monkeypatch, tmp_path, smooth())
    ax = fig.axes[0]
    assert ax.get_xlim() == (500000.0, 500000.0 + 8 * 320)
    assert ax.get_ylim() == (5300000.0 - 6 * 320, 5300000.0)
    assert ax.get_xlabel() == "easting (m)" and ax.get_ylabel() == "northing (m)"
    texts = " ".join(t.get_text() for t in fig.texts)
    assert "EPSG:32633" in texts and "UTM zone 33N" in texts
    bars = [a for a in ax.artists if isinstance(a, AnchoredSizeBar)]
    assert len(bars) == 1 and bars[0].txt_label.get_text() == "500 m"
    assert "320 m map pixels" in ax.get_title() and "min 0.120" in ax.get_title()
    assert fig.axes[1].get_ylabel() == "soil moisture (m³/m³)"  # the colour bar
    assert red_share(pixels) == 0


def test_a_constant_or_saturated_map_is_visibly_different(monkeypatch, tmp_path):
    constant = np.ones((6, 8), np.float32)
    fig, pixels = drawn(monkeypatch, tmp_path, constant)
    assert "all predicted values are 1.000 m³/m³" in fig.axes[0].get_title()
    assert fig.axes[0].images[0].colorbar.extend == "max"
    assert red_share(pixels) > 0.2  # the whole map in the colour above the range
    both = smooth()
    both[5, 7], both[1, 1] = 0.9, -0.05
    fig, _ = drawn(monkeypatch, tmp_path, both)
    assert fig.axes[0].images[0].colorbar.extend == "both"
    assert "min -0.050" in fig.axes[0].get_title() and "max 0.900" in fig.axes[0].get_title()
    assert writer.colour_extend(writer.value_stats([smooth()])) == "neither"
    assert writer.values_text({"min": None, "mean": None, "max": None}) == "no pixel predicted"


def test_scale_bars_are_round_and_labelled_in_the_crs_units():
    assert writer.scale_bar(2560, "m") == (500, "500 m")
    assert writer.scale_bar(102400, "m") == (20000, "20 km")
    length, label = writer.scale_bar(0.3, "°")
    assert length == pytest.approx(0.05) and label == "0.05°"
    assert writer.crs_name(SCENE.grid.crs) == "EPSG:32633"
    custom = 'LOCAL_CS["site grid",UNIT["metre",1]]'
    assert writer.crs_name(custom) == custom  # no authority: the WKT itself


# --- where outputs may go (checked before the model is even loaded: the
# "model" here is an empty folder, which check_model would refuse with exit 1)

@pytest.mark.parametrize("case", ["in_scene", "folder", "tif_then_tiff"])
def test_an_output_that_cannot_be_written_there_is_refused_up_front(work, tmp_path, case):
    not_a_model = tmp_path / "model"
    not_a_model.mkdir()
    taken = tmp_path / "out" / "a.tif"
    taken.parent.mkdir()
    taken.write_bytes(b"another map")
    (tmp_path / "out" / "a.png").write_bytes(b"its quicklook")
    (tmp_path / "out" / "folder.tif").mkdir()
    output, words = {"in_scene": (work / "scene" / "map.tif", "is in the scene folder"),
                     "folder": (tmp_path / "out" / "folder.tif", "is a folder"),
                     "tif_then_tiff": (tmp_path / "out" / "a.tiff", "are those of the map")}[case]
    rc, _, stderr = run_cli(["--scene_path", str(work / "scene"), "--exported_model_dir",
                             str(not_a_model), "--output_path", str(output)])
    lines = error_lines(stderr)
    assert rc == 2 and len(lines) == 1 and words in lines[0] and "--output_path" in lines[0], \
        stderr[-2000:]
    assert not os.path.exists(work / "scene" / "map.tif")
    assert (tmp_path / "out" / "a.png").read_bytes() == b"its quicklook"


def test_outputs_beside_the_scene_or_once_per_name_are_accepted(work, tmp_path):
    scene = str(work / "scene")
    assert writer.output_problem(os.path.join(scene, "maps", "m.tif"), scene) is None
    assert writer.output_problem(str(tmp_path / "b.tif"), scene) is None
    (tmp_path / "b.tif").write_bytes(b"the same map, again")
    assert writer.output_problem(str(tmp_path / "b.tif"), scene) is None  # a re-run
    assert writer.output_problem("gs://bucket/maps/m.tif", "gs://bucket/scene/") is None
    assert "scene folder" in writer.output_problem("gs://bucket/scene/m.tif", "gs://bucket/scene/")


# --- the three outputs replaced together or not at all

def outputs(path):
    """The bytes of the map, its quicklook and summary (None: absent), and
    every file of the folder."""
    found = tuple(open(p, "rb").read() if os.path.exists(p) else None for p in (
        path, writer.quicklook_path(path), writer.summary_file(path)))
    return found, sorted(os.listdir(os.path.dirname(path)))


def failing(monkeypatch, module, name, at):
    """Make ``module.name`` raise a full disk on its ``at``-th call (1-based);
    returns the list of calls made."""
    calls, real = [], getattr(module, name)

    def step(*args, **kwargs):
        calls.append(args)
        if len(calls) == at:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, step)
    return calls


def test_a_rerun_that_fails_anywhere_leaves_the_previous_outputs_and_no_temporary(
        monkeypatch, tmp_path):
    import shutil

    path = str(tmp_path / "map.tif")
    write(path, smooth())
    before = outputs(path)
    assert all(before[0]) and before[1] == ["map.png", "map.summary.json", "map.tif"]
    with monkeypatch.context() as m:  # a full run: how many renames and copies it makes
        renames, copies = failing(m, os, "replace", 0), failing(m, shutil, "copyfileobj", 0)
        write(path, smooth(0.1))
    assert outputs(path)[0] != before[0]
    write(path, smooth())
    assert outputs(path) == before and len(renames) == 6 and len(copies) == 3
    for module, name, count in ((os, "replace", 6), (shutil, "copyfileobj", 3)):
        for at in range(1, count + 1):
            with monkeypatch.context() as m:
                failing(m, module, name, at)
                with pytest.raises(OSError, match="No space left"):
                    write(path, smooth(0.1))
            assert outputs(path) == before, (name, at)


def test_a_first_run_that_fails_leaves_nothing(monkeypatch, tmp_path):
    path = str(tmp_path / "map.tif")
    for at in (1, 2, 3):
        with monkeypatch.context() as m:
            failing(m, os, "replace", at)
            with pytest.raises(OSError):
                write(path, smooth())
        assert outputs(path) == ((None, None, None), []), at
    assert not glob.glob(str(tmp_path / "*"))


def test_a_failed_write_names_the_map_and_its_temporary_folder(monkeypatch):
    import errno
    import tempfile

    from transforms.mapping import job

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(job, "write_map", full)
    with pytest.raises(OSError) as e:
        job.write_named([], None, None, "maps/m.tif", {})
    assert str(e.value) == (f"writing the map maps/m.tif (assembled in {tempfile.gettempdir()} "
                            f"first) failed: OSError: [Errno 28] No space left on device")
