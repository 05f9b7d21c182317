"""The map as one PTransform: tiles -> windows -> the model -> map blocks.

``PredictMap``: the tiles (``geometry.MapGeometry.tiles``) of every scene
(one scene for a map, several for a cube through time, all on one grid) are
spread over workers; each is read and cut into windows (``tiles``), whose
batches go through Beam's ``RunInference`` with
``model_runner.windows.WindowModelHandler`` (its post-processing keys each
prediction by its tile and map pixel); predictions are put back in
their tile's block, and the blocks are written into the map by one writer
(``writer``). A worker holds the regions of at most ``TILES_IN_FLIGHT``
tiles, never the scene.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Iterator, List, NamedTuple, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import PredictionResult, RunInference

from model_runner.windows import WindowBatch, WindowModelHandler
from transforms.dataset.counters import FlowCounters
from transforms.dataset.walks import ConcurrentWalks, WalkingDoFn
from transforms.mapping import tiles as tiles_module
from transforms.mapping.geometry import MapGeometry, Tile
from transforms.mapping.scene import Scene

NAMESPACE = "predict_map"
COUNTERS = FlowCounters(NAMESPACE)
_LOG = logging.getLogger(__name__)


#: batches of windows read and decoded ahead of the model (all tiles in flight together)
READ_AHEAD = 3
#: tiles read at once by a worker: the next tile's region is read and checked
#: (in a background thread: GDAL and numpy release the GIL) while the last
#: one's windows go through the model, so the model never waits for a read
TILES_IN_FLIGHT = 2
#: how much lower than the model's the reading threads' CPU priority is
READER_NICENESS = 10


def at_low_priority(items: Iterator) -> Iterator:
    """``items``, produced by a thread that first lowers its own CPU priority
    (Linux: a thread's nice value; elsewhere nothing changes). The model's
    threads then run whenever they can and the tile reads fill the time they
    leave: on a machine with as many cores as the model uses, a read no
    longer delays every thread of a parallel TensorFlow op."""
    import os

    try:
        me = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, me,
                       min(19, os.getpriority(os.PRIO_PROCESS, me) + READER_NICENESS))
    except (AttributeError, OSError):  # no per-thread priorities here
        pass
    yield from items


#: glibc's ``mallopt`` parameters: the size above which a block is mapped on
#: its own (and returned to the system when freed), and the most arenas
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8
#: tile regions and batches larger than this are mapped on their own
MMAP_THRESHOLD_BYTES = 4 << 20
#: malloc arenas the reading and model threads share
ARENAS = 2


def return_freed_regions() -> bool:
    """Make glibc give each block of more than ``MMAP_THRESHOLD_BYTES`` back
    to the system when it is freed, and keep its threads to ``ARENAS``
    arenas (Linux; elsewhere nothing changes).

    By default glibc raises the mapping threshold once a large block is
    freed, after which tile regions and window batches come from per-thread
    arenas (up to 8 a core) that keep them when freed: a worker reading tile
    after tile on fresh threads grew by tens of MB a tile (a cube of 20
    times of 1024² scenes by 515 MB over one of 5,
    ``benchmarks/cube_benchmark.py``). With both settings the worker's memory
    is that of the tiles in flight. Call it before the first tile is read.

    Returns:
        Whether both settings were applied.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                    and libc.mallopt(M_ARENA_MAX, ARENAS))
    except (OSError, AttributeError):  # not glibc
        return False


class MapBlock(NamedTuple):
    """One tile of the map of one scene.

    Attributes:
        time_index: the scene's position in ``PredictMap.scenes``.
        tile: the tile.
        values: float32 soil moisture, NaN where not predicted.
        causes: uint8 codes (``tiles.CAUSES``; 0: predicted).
        smap, gldas: float32 SMAP and GLDAS at each pixel's centre (0-255
            scale; NaN: none held).
    """

    time_index: int
    tile: Tile
    values: np.ndarray
    causes: np.ndarray
    smap: np.ndarray
    gldas: np.ndarray


class ReadTileWindowsFn(WalkingDoFn):
    """``(time index, tile)`` -> its ``(key, (causes, aux))`` (tagged
    ``causes``) and a ``WindowBatch`` per batch of valid windows (key:
    ``(key, pixels)``), where ``key`` is ``(time index, tile)``.

    Tiles are read in background threads (``walks.ConcurrentWalks``), up to
    ``TILES_IN_FLIGHT`` at once and ``READ_AHEAD`` batches ahead of the
    model, so a tile's outputs may come while a later tile of the bundle is
    processed, or when the bundle finishes; every tile of a bundle is done
    before it ends. Tiles are in the global window (as ``PredictMap`` makes
    them).

    Args:
        scenes: the scenes (metadata only), by time index.
        geometry: the map's geometry.
        edge_mode: ``nan`` or ``pad`` (``tiles.EDGE_MODES``).
        batch_size: windows per model batch.
    """

    CAUSES = "causes"

    def __init__(self, scenes: Tuple[Scene, ...], geometry: MapGeometry, edge_mode: str,
                 batch_size: int):
        self.scenes, self.geometry = scenes, geometry
        self.edge_mode, self.batch_size = edge_mode, batch_size

    def setup(self):
        return_freed_regions()
        self._causes = {}  # a tile's causes until its aux arrays follow
        self.tiles_read = COUNTERS("tiles_read")
        self.windows = COUNTERS("windows_fed")

    depth, parallel = READ_AHEAD, TILES_IN_FLIGHT

    def process(self, element: Tuple[int, Tile]):
        index, tile = element
        yield from self.walk((index, tuple(tile)), at_low_priority(tiles_module.tile_windows(
            self.scenes[index], self.geometry, Tile(*tile), self.edge_mode, self.batch_size)))

    def outputs(self, taken):
        for key, item in taken:
            if item is ConcurrentWalks.END:
                continue
            kind, value = item
            if kind == "causes":
                self._causes[key] = value
            elif kind == "aux":
                self.tiles_read.inc()
                yield beam.pvalue.TaggedOutput(self.CAUSES, (key, (self._causes.pop(key), value)))
            else:
                pixels, inputs = value
                self.windows.inc(len(pixels))
                yield WindowBatch((key, pixels), inputs["image"], inputs["low_res"],
                                  inputs["aux"])


def every_tile(geometry: MapGeometry, scenes: int) -> List[Tuple[int, Tile]]:
    """``(time index, tile)`` for every tile of each of ``scenes`` maps, time
    by time (so the first map's tiles go to the workers first)."""
    return [(index, tile) for index in range(scenes) for tile in geometry.tiles()]


def predictions_of(result: PredictionResult) -> Tuple[tuple, List[Tuple[Tuple[int, int], float]]]:
    """RunInference's post-processing: a batch's result -> ``(key, [((row,
    col), prediction)])``, its map pixels keyed by their ``(time index, tile)``."""
    batch, values = result.example, result.inference
    key, pixels = batch.key
    return key, [(p, float(v)) for p, v in zip(pixels, np.asarray(values, np.float32))]


class ProgressFn(beam.DoFn):
    """Passes predictions on, logging a progress line at most every
    ``progress_seconds`` (per worker; 0: never): windows predicted, their
    rate, and the share of the map's windows, so a large tile at a small
    stride is never silent for long.

    Args:
        total_windows: the map's pixels (an upper bound on the windows fed).
        progress_seconds: the interval between lines (0: no lines).
    """

    def __init__(self, total_windows: int, progress_seconds: float):
        self.total_windows, self.progress_seconds = total_windows, progress_seconds

    def setup(self):
        self._started = self._last = time.monotonic()
        self._done = 0

    def process(self, element):
        self._done += len(element[1])
        now = time.monotonic()
        if self.progress_seconds and now - self._last >= self.progress_seconds:
            self._last = now
            _LOG.info(progress_line(self._done, self.total_windows, now - self._started))
        yield element


def progress_line(done: int, total: int, seconds: float) -> str:
    """``progress: 1,200 windows predicted (29% of 4,096 map pixels), 80
    windows/s``.

    Args:
        done: windows predicted so far (by this worker).
        total: the map's pixels.
        seconds: since the first window.

    Returns:
        The line.
    """
    rate = done / seconds if seconds > 0 else 0.0
    return (f"progress: {done:,} windows predicted ({100 * done / max(total, 1):.0f}% of "
            f"{total:,} map pixels), {rate:,.0f} windows/s")


def assemble_block(element) -> MapBlock:
    """``((time index, tile), {"causes": [(causes, (smap, gldas))],
    "predictions": [[(pixel, value)]]})`` -> the ``MapBlock`` (a float32
    block with NaN where not predicted). A
    prediction the model gave as NaN (or infinite) leaves its pixel NaN with
    the cause ``model_nan``: a NaN is never counted as predicted.

    Raises:
        RuntimeError: a predicted pixel the tile marked as NaN, a pixel
            predicted twice, or one left without a value (a bug, never data).
    """
    (index, tile), grouped = element
    tile = Tile(*tile)
    ((causes, (smap, gldas)),) = grouped["causes"]
    causes = causes.copy()
    block = tiles_module.empty_block(tile)
    seen = np.zeros(block.shape, dtype=bool)
    model_nan = tiles_module.CAUSES.index("model_nan") + 1
    for values in grouped["predictions"]:
        for (a, b), v in values:
            if causes[a, b] != 0 or seen[a, b]:
                raise RuntimeError(f"tile {tile}: pixel {(a, b)} predicted twice or not wanted")
            seen[a, b] = True
            if np.isfinite(v):
                block[a, b] = v
            else:
                causes[a, b] = model_nan
    wanted = (causes == 0) | (causes == model_nan)
    if not np.array_equal(seen, wanted):
        raise RuntimeError(f"tile {tile}: {int(wanted.sum() - seen.sum())} windows "
                           f"without a prediction")
    return MapBlock(index, tile, block, causes, smap, gldas)


@dataclasses.dataclass
class PredictMap(beam.PTransform):
    """Pipeline start -> a ``MapBlock`` for every tile of every scene's map.

    Attributes:
        scenes: the scenes (``scene.read_scene``), all on the grid of
            ``geometry``; a block's ``time_index`` is its scene's position.
        geometry: the map's geometry (stride, window, tile size).
        model_handler: a ``WindowModelHandler``.
        edge_mode: ``nan`` (windows reaching outside the scene are NaN) or
            ``pad`` (zeros outside the scene).
        batch_size: windows per model batch.
        progress_seconds: how often each worker logs windows predicted (0: never).
    """

    scenes: Tuple[Scene, ...]
    geometry: MapGeometry
    model_handler: WindowModelHandler
    edge_mode: str = "nan"
    batch_size: int = 8
    progress_seconds: float = 10.0

    def expand(self, pbegin):
        tiles = (pbegin
                 | "Geometry" >> beam.Create([(self.geometry, len(self.scenes))])
                 | "Tiles" >> beam.FlatMapTuple(every_tile)
                 | "Spread tiles" >> beam.Reshuffle())
        read = tiles | "Read tile windows" >> beam.ParDo(ReadTileWindowsFn(
            tuple(self.scenes), self.geometry, self.edge_mode, self.batch_size)).with_outputs(
                ReadTileWindowsFn.CAUSES, main="batches")
        rows, cols = self.geometry.shape
        predictions = (read.batches
                       | "Run model" >> RunInference(
                           self.model_handler.with_postprocess_fn(predictions_of))
                       | "Progress" >> beam.ParDo(ProgressFn(rows * cols * len(self.scenes),
                                                           self.progress_seconds)))
        return ({"causes": read[ReadTileWindowsFn.CAUSES], "predictions": predictions}
                | "Group by tile" >> beam.CoGroupByKey()
                | "Assemble blocks" >> beam.Map(assemble_block))

