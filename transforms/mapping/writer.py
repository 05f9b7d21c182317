"""The map's files: a Cloud-Optimized GeoTIFF, its quicklook PNG and its
summary, replaced together or not at all.

GDAL's COG driver only copies, so the blocks are written into a tiled
GeoTIFF in a temporary folder, copied as a COG (internal tiles, overviews,
DEFLATE with the floating-point predictor) and drawn as the quicklook.
``write_map`` stages both beside their outputs under temporary names
(``<name>.tmp-<hex>``); ``StagedMap.commit`` stages the summary too, then
renames the three into place, the previous outputs moved aside first: if a
step fails (a full disk, a failed rename) the new files are removed, the
previous ones put back and no temporary is left. Side files are named from
the map's name without ``.tif``/``.tiff``: ``output_problem`` refuses a map
whose side files another map beside it has (``a.tiff`` beside ``a.tif``).
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import posixpath
import shutil
import tempfile
import uuid
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.dataset import files, model_interface
from transforms.mapping.geometry import MapGeometry, Tile
from transforms.mapping.scene import ALL_BANDS, Scene, crs_name
from transforms.mapping.tiles import CAUSES, cause_counts

_LOG = logging.getLogger(__name__)
BAND_DESCRIPTION = "soil_moisture_m3_m3"
UNITS = "m3/m3"
QUICKLOOK_MAX_SIDE = 2048
#: the quicklook's colour range (m³/m³); values outside it show in these colours
COLOUR_RANGE = (0.0, 0.6)
OVER_COLOUR, UNDER_COLOUR = "red", "magenta"
MAP_SUFFIXES = (".tif", ".tiff")


def quicklook_path(output_path: str) -> str:
    """``<output_path without .tif/.tiff>.png``."""
    return _root(output_path) + ".png"


def summary_file(output_path: str) -> str:
    """``<output_path without .tif/.tiff>.summary.json``."""
    return _root(output_path) + ".summary.json"


def _root(output_path: str) -> str:
    root, ext = os.path.splitext(output_path)
    return root if ext.lower() in MAP_SUFFIXES else output_path


def location(path: str) -> str:
    """``path`` as an absolute path, or as given when it is a URI (``gs://``)."""
    return path if "://" in path else os.path.abspath(path)


def output_problem(output_path: str, scene_path: str) -> Optional[str]:
    """Why the map ``output_path`` cannot be written (one line naming
    ``--output_path``), or None: it is directly in the folder ``scene_path``
    or in one of its band folders (the next run on that scene would read
    it as a band; another subfolder is fine); it, its quicklook or summary is
    an existing folder; or another map beside it has the same side files
    (``a.tif`` and ``a.tiff`` both have ``a.png`` and ``a.summary.json``).
    Folders and other maps are looked for on local paths only."""
    remote = "://" in output_path or "://" in scene_path
    if (posixpath.dirname(output_path) == scene_path.rstrip("/") if remote else
            os.path.realpath(os.path.dirname(os.path.abspath(output_path)))
            == os.path.realpath(scene_path)):
        return (f"--output_path {output_path} is in the scene folder {scene_path}: the next run "
                f"on that scene would read the map as a band; write it elsewhere (a subfolder "
                f"will do)")
    parent = posixpath.dirname(output_path.rstrip("/")) if remote else os.path.dirname(
        os.path.abspath(output_path))
    if posixpath.basename(parent) in ALL_BANDS and (
            posixpath.dirname(parent) == scene_path.rstrip("/") if remote else
            os.path.realpath(os.path.dirname(parent)) == os.path.realpath(scene_path)):
        return (f"--output_path {output_path} is in the band folder {parent} of the scene: the "
                f"next run would mosaic the map into the band; write it elsewhere")
    if "://" in output_path:
        return None
    for path in (output_path, quicklook_path(output_path), summary_file(output_path)):
        if os.path.isdir(path):
            return f"--output_path {output_path}: {path} is a folder, not a file to write"
    other = _other_map(output_path)
    if other:
        return (f"--output_path {output_path}: its quicklook {quicklook_path(output_path)} and "
                f"summary {summary_file(output_path)} are those of the map {other}; name this "
                f"map differently or remove that one")
    return None


def _other_map(output_path: str) -> Optional[str]:
    """Another GeoTIFF beside ``output_path`` with the same side files."""
    folder, name = os.path.split(os.path.abspath(output_path))
    for entry in sorted(os.listdir(folder) if os.path.isdir(folder) else ()):
        path = os.path.join(folder, entry)
        if (entry != name and _root(entry) == _root(name) and entry.lower().endswith(
                MAP_SUFFIXES) and not (os.path.exists(output_path)
                                       and os.path.samefile(path, output_path))):
            return path
    return None


def map_units(wkt: str) -> str:
    """The CRS's unit of length, short (``m``), or ``°`` for a geographic CRS."""
    from rasterio.crs import CRS

    crs = CRS.from_wkt(wkt) if wkt else None
    units = crs.linear_units if crs is not None and crs.is_projected else "°"
    return "m" if units in ("metre", "meter") else units


def map_profile(scene: Scene, geometry: MapGeometry) -> Dict[str, object]:
    """The GeoTIFF profile of the map of ``scene`` at ``geometry``: float32,
    NaN nodata, the scene's CRS, the scene's transform scaled by the stride."""
    from affine import Affine
    from rasterio.crs import CRS

    rows, cols = geometry.shape
    block = 256 if min(rows, cols) >= 256 else 16 * max(1, min(rows, cols) // 16)
    return {"driver": "GTiff", "dtype": "float32", "count": 1, "height": rows, "width": cols,
            "crs": CRS.from_wkt(scene.grid.crs), "nodata": float("nan"),
            "transform": Affine(*scene.grid.transform) @ Affine.scale(geometry.stride),
            "tiled": True, "blockxsize": block, "blockysize": block}


def value_stats(blocks: Iterable[np.ndarray]) -> Dict[str, Optional[float]]:
    """``min``, ``mean`` and ``max`` of the finite values of ``blocks`` (None
    each when there is none), block by block (the mean summed in float64)."""
    count, total, low, high = 0, 0.0, np.inf, -np.inf
    for block in blocks:
        finite = block[np.isfinite(block)]
        if finite.size:
            count, total = count + finite.size, total + float(finite.sum(dtype=np.float64))
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    return ({"min": low, "mean": total / count, "max": high} if count
            else {"min": None, "mean": None, "max": None})


def values_text(values: Dict[str, Optional[float]]) -> str:
    """The quicklook's line on the predicted ``values`` (``value_stats``):
    ``no pixel predicted``, ``all predicted values are 1.000 m³/m³`` (a
    constant map) or their min, mean, max; and the colours of those outside
    ``COLOUR_RANGE``."""
    low, high = values["min"], values["max"]
    if low is None:
        return "no pixel predicted"
    text = (f"all predicted values are {low:.3f} m³/m³" if low == high else
            f"predicted min {low:.3f}, mean {values['mean']:.3f}, max {high:.3f} m³/m³")
    outside = [f"{colour}: {word} {limit:g}" for colour, word, limit, out in (
        (UNDER_COLOUR, "below", COLOUR_RANGE[0], low < COLOUR_RANGE[0]),
        (OVER_COLOUR, "above", COLOUR_RANGE[1], high > COLOUR_RANGE[1])) if out]
    return text + (f" ({', '.join(outside)})" if outside else "")


def colour_extend(values: Dict[str, Optional[float]]) -> str:
    """The colour bar's ``extend``: ``min``, ``max``, ``both`` or ``neither``,
    as the predicted values fall below or above ``COLOUR_RANGE``."""
    below = values["min"] is not None and values["min"] < COLOUR_RANGE[0]
    above = values["max"] is not None and values["max"] > COLOUR_RANGE[1]
    return ("both" if above else "min") if below else ("max" if above else "neither")


def scale_bar(width: float, units: str) -> Tuple[float, str]:
    """A round scale-bar length (1, 2 or 5 × 10ⁿ) of at most a quarter of
    ``width`` (map units), and its label (``2 km``, ``500 m``, ``0.05°``)."""
    target = width / 4
    power = 10.0 ** np.floor(np.log10(target))
    length = max(m * power for m in (1, 2, 5) if m * power <= target)
    if units == "m" and length >= 1000:
        return length, f"{length / 1000:g} km"
    return length, f"{length:g}°" if units == "°" else f"{length:g} {units}"


def quicklook(cog: str, png: str, title: str, values: Dict[str, Optional[float]]) -> None:
    """The map ``cog`` as the PNG ``png`` (decimated to at most
    ``QUICKLOOK_MAX_SIDE`` pixels a side, from the COG's overviews): axes in
    the CRS's units, the CRS named, a scale bar, a colour bar in m³/m³ over
    ``COLOUR_RANGE`` extended at the ends the ``values`` (the whole map's
    ``min``, ``mean``, ``max``) pass, ``title`` above ``values_text``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyproj
    import rasterio
    from matplotlib.ticker import MaxNLocator
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    with rasterio.open(cog) as ds:
        scale = max(1, int(np.ceil(max(ds.height, ds.width) / QUICKLOOK_MAX_SIDE)))
        data = ds.read(1, out_shape=(max(1, ds.height // scale), max(1, ds.width // scale)))
        bounds, wkt = ds.bounds, ds.crs.to_wkt() if ds.crs else ""
    units = map_units(wkt)
    cmap = matplotlib.colormaps["YlGnBu"].with_extremes(over=OVER_COLOUR, under=UNDER_COLOUR,
                                                         bad=(0, 0, 0, 0))
    fig, ax = plt.subplots(figsize=(7.5, 6.5), constrained_layout=True)
    ax.set_facecolor("0.85")  # NaN pixels (no prediction) show grey
    shown = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=COLOUR_RANGE[0],
                      vmax=COLOUR_RANGE[1], interpolation="nearest",
                      extent=(bounds.left, bounds.right, bounds.bottom, bounds.top))
    fig.colorbar(shown, ax=ax, extend=colour_extend(values), shrink=0.85,
                 label="soil moisture (m³/m³)")
    ax.set_xlabel(f"easting ({units})" if units != "°" else "longitude (°)")
    ax.set_ylabel(f"northing ({units})" if units != "°" else "latitude (°)")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    length, label = scale_bar(bounds.right - bounds.left, units)
    ax.add_artist(AnchoredSizeBar(ax.transData, length, label, "lower left", pad=0.5,
                                  size_vertical=(bounds.top - bounds.bottom) / 150,
                                  frameon=True))
    name = crs_name(wkt)
    name = "none" if not wkt else pyproj.CRS.from_wkt(wkt).name + (
        f" ({name})" if name != wkt else "")
    ax.set_title(f"{title}\n{values_text(values)}", fontsize=9,
                 color="black" if colour_extend(values) == "neither" else "darkred")
    fig.text(0.01, 0.005, f"CRS {name}; grey: no prediction", fontsize=7, va="bottom")
    fig.savefig(png, dpi=110)
    plt.close(fig)


@dataclasses.dataclass
class StagedMap:
    """A map and quicklook staged beside their outputs for ``commit``.

    Attributes:
        counts: map pixels by outcome: ``predicted``, each of ``tiles.CAUSES``,
            ``tiles`` (tiles written) and ``saturated`` (predicted pixels
            exactly on the model's clip bounds, ``model_interface.saturated``).
        values: ``min``, ``mean``, ``max`` of the predicted values (None
            each when nothing was predicted).
        crs: the map's CRS, ``EPSG:<code>`` when it has one, else WKT.
        bounds: ``left``, ``bottom``, ``right``, ``top`` in the CRS.
        staged: ``(temporary, final)`` paths of the map and its quicklook.
    """

    counts: Dict[str, int]
    values: Dict[str, Optional[float]]
    crs: str
    bounds: Dict[str, float]
    staged: List[Tuple[str, str]]

    @property
    def nodata(self) -> Dict[str, int]:
        """NaN map pixels by cause (every cause of ``tiles.CAUSES``)."""
        return {cause: self.counts.get(cause, 0) for cause in CAUSES}

    def commit(self, summary_path: str, summary: Dict[str, object]) -> None:
        """Stage ``summary`` as JSON for ``summary_path``, then put the map,
        its quicklook and the summary in place together (see the module).

        Raises:
            OSError: (or the filesystem's error) a step failed; nothing changed.
        """
        self.staged.append((_temporary(summary_path), summary_path))
        try:
            _put(io.BytesIO(json.dumps(summary, indent=2, sort_keys=True).encode()),
                 self.staged[-1][0])
            _replace_together(self.staged)
        finally:
            self.discard()

    def discard(self) -> None:
        """Delete the temporaries still staged (after a commit: none)."""
        for temp, _ in self.staged:
            _quietly(_delete, temp)
        self.staged = []


def write_map(blocks: Iterable[Tuple[Tile, np.ndarray, np.ndarray]], scene: Scene,
              geometry: MapGeometry, output_path: str, tags: Dict[str, str]) -> StagedMap:
    """Write every tile's ``(tile, values, causes)`` of ``blocks`` into the
    map of ``scene`` at ``geometry`` (a COG: band unit ``m3/m3``, ``tags``)
    and draw its quicklook (titled with the ``stride``, ``stride_m`` and
    ``map_units`` tags), both staged beside ``output_path`` and
    ``quicklook_path(output_path)`` for ``StagedMap.commit``.

    Returns:
        The staged map: counts, value statistics, CRS, bounds.

    Raises:
        RuntimeError: a tile written twice (a bug, never data).
    """
    import rasterio
    import rasterio.shutil
    from rasterio.transform import array_bounds
    from rasterio.windows import Window

    counts = {"predicted": 0, **{c: 0 for c in CAUSES}, "tiles": 0, "saturated": 0}
    profile, written, staged = map_profile(scene, geometry), set(), []

    def write(dst):  # each block into the map, counted; yields it for value_stats
        for tile, block, causes in blocks:
            if tuple(tile) in written:
                raise RuntimeError(f"tile {tile} written twice")
            written.add(tuple(tile))
            dst.write(block, 1, window=Window(tile.col, tile.row, tile.width, tile.height))
            for key, n in cause_counts(causes).items():
                counts[key] = counts.get(key, 0) + n
            counts["tiles"] += 1
            counts["saturated"] += int(model_interface.saturated(block).sum())
            yield block

    with tempfile.TemporaryDirectory(prefix="map-") as folder:
        assembled, cog = os.path.join(folder, "map.tif"), os.path.join(folder, "cog.tif")
        with rasterio.open(assembled, "w", **profile) as dst:
            values = value_stats(write(dst))
            dst.set_band_description(1, BAND_DESCRIPTION)
            dst.units = (UNITS,)
            dst.update_tags(**tags)
            dst.update_tags(1, units=UNITS)
        rasterio.shutil.copy(assembled, cog, driver="COG", compress="DEFLATE",
                             predictor="FLOATING_POINT", overview_resampling="average",
                             blocksize=256)
        png = os.path.join(folder, "quicklook.png")
        units = tags.get("map_units", "m")  # the title: the map pixels' size
        quicklook(cog, png, f"{posixpath.basename(output_path)}: soil moisture at "
                  f"{tags.get('stride_m', '?')}{'' if units == '°' else ' '}{units} map pixels "
                  f"(stride {tags.get('stride', '?')})", values)
        result = StagedMap(counts, values, crs_name(scene.grid.crs), dict(zip(
            ("left", "bottom", "right", "top"),
            array_bounds(profile["height"], profile["width"], profile["transform"]))), staged)
        try:
            for local, final in ((cog, output_path), (png, quicklook_path(output_path))):
                staged.append((_temporary(final), final))
                with open(local, "rb") as source:
                    _put(source, staged[-1][0])
        except BaseException:
            result.discard()
            raise
    return result


def _temporary(path: str) -> str:
    return f"{path}.tmp-{uuid.uuid4().hex}"


def _put(source, path: str) -> None:
    """Copy the open binary file ``source`` to ``path`` (local or remote)."""
    with (FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
          if "://" in path else open(path, "wb")) as dst:
        shutil.copyfileobj(source, dst, 8 << 20)


def _exists(path: str) -> bool:
    return FileSystems.exists(path) if "://" in path else os.path.lexists(path)


def _delete(path: str) -> None:
    if _exists(path):
        FileSystems.delete([path]) if "://" in path else os.remove(path)


def _quietly(step, *args) -> None:
    try:
        step(*args)
    except Exception as e:  # cleaning up after a failure: report, keep the first error
        _LOG.warning("could not clean up %s: %s", args, e)


def _replace_together(staged: List[Tuple[str, str]]) -> None:
    """Rename each ``(temporary, final)`` into place, all or none (see
    ``StagedMap.commit``)."""
    aside: List[Tuple[str, str]] = []
    placed: List[str] = []
    try:
        for temp, final in staged:
            if _exists(final):
                old = _temporary(final)
                files.replace_file(final, old)
                aside.append((old, final))
            files.replace_file(temp, final)
            placed.append(final)
    except BaseException:
        for final in placed:
            _quietly(_delete, final)
        for old, final in aside:
            _quietly(files.replace_file, old, final)
        raise
    for old, _ in aside:
        _quietly(_delete, old)
