"""The map as one PTransform: tiles -> windows -> the model -> map blocks.

``PredictMap``: the scene's tiles (``geometry.MapGeometry.tiles``) are
spread over workers; each is read and cut into windows (``tiles``), whose
batches go through Beam's ``RunInference`` with
``model_runner.windows.WindowModelHandler``; predictions are put back in
their tile's block, and the blocks are written into the map by one writer
(``writer``). Only a tile's region is ever held in memory.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from typing import Iterator, List, Tuple

import apache_beam as beam
import numpy as np

from model_runner.windows import WindowBatch, WindowModelHandler
from transforms.dataset.counters import FlowCounters
from transforms.mapping import tiles as tiles_module
from transforms.mapping.geometry import MapGeometry, Tile
from transforms.mapping.scene import Scene

NAMESPACE = "predict_map"
COUNTERS = FlowCounters(NAMESPACE)
PROGRESS_SECONDS = 10.0
_LOG = logging.getLogger(__name__)


#: batches of windows read and decoded ahead of the model, per tile
READ_AHEAD = 3


def read_ahead(items: Iterator, depth: int) -> Iterator:
    """``items``, produced in a background thread at most ``depth`` ahead of
    the consumer: reading and decoding the next windows (GDAL and numpy
    release the GIL) overlaps the model's ``session.run`` on the last ones.
    An exception in the producer is raised in the consumer."""
    done = object()
    slots: "queue.Queue" = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(done)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            slots.put(e)

    thread = threading.Thread(target=produce, name="map-tile-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


class ReadTileWindowsFn(beam.DoFn):
    """Tile -> its ``(tile, causes)`` (tagged ``causes``) and a
    ``WindowBatch`` per batch of valid windows (key: ``(tile, pixels)``).

    Args:
        scene: the scene (metadata only).
        geometry: the map's geometry.
        edge_mode: ``nan`` or ``pad`` (``tiles.EDGE_MODES``).
        batch_size: windows per model batch.
    """

    CAUSES = "causes"

    def __init__(self, scene: Scene, geometry: MapGeometry, edge_mode: str, batch_size: int):
        self.scene, self.geometry = scene, geometry
        self.edge_mode, self.batch_size = edge_mode, batch_size

    def setup(self):
        self.tiles_read = COUNTERS("tiles_read")
        self.windows = COUNTERS("windows_fed")
        self._progress = [time.time(), 0, 0]  # last line, tiles and windows since

    def _log_progress(self, windows: int) -> None:
        """A progress line at most every ``PROGRESS_SECONDS`` per worker."""
        self._progress[1] += 1
        self._progress[2] += windows
        if time.time() - self._progress[0] >= PROGRESS_SECONDS:
            _LOG.info("progress: %d tiles read, %d windows fed to the model in the last %.0f s",
                      self._progress[1], self._progress[2], time.time() - self._progress[0])
            self._progress = [time.time(), 0, 0]

    def process(self, tile: Tile):
        for kind, value in read_ahead(tiles_module.tile_windows(
                self.scene, self.geometry, tile, self.edge_mode, self.batch_size), READ_AHEAD):
            if kind == "causes":
                self.tiles_read.inc()
                self._log_progress(int((value == 0).sum()))
                yield beam.pvalue.TaggedOutput(self.CAUSES, (tuple(tile), value))
            else:
                pixels, inputs = value
                self.windows.inc(len(pixels))
                yield WindowBatch((tuple(tile), pixels), inputs["image"], inputs["low_res"],
                                  inputs["aux"])


def predictions_of(result) -> Tuple[tuple, List[Tuple[Tuple[int, int], float]]]:
    """A RunInference result -> ``(tile, [((row, col), prediction)])``."""
    batch, values = result.example, result.inference
    tile, pixels = batch.key
    return tile, [(p, float(v)) for p, v in zip(pixels, np.asarray(values, np.float32))]


def assemble_block(element) -> Tuple[Tile, np.ndarray, np.ndarray]:
    """``(tile, {"causes": [array], "predictions": [[(pixel, value)]]})`` ->
    ``(tile, float32 block with NaN where not predicted, causes)``.

    Raises:
        RuntimeError: a predicted pixel the tile marked as NaN, a pixel
            predicted twice, or one left without a value (a bug, never data).
    """
    tile, grouped = element
    tile = Tile(*tile)
    (causes,) = grouped["causes"]
    block = tiles_module.empty_block(tile)
    seen = np.zeros(block.shape, dtype=bool)
    for values in grouped["predictions"]:
        for (a, b), v in values:
            if causes[a, b] != 0 or seen[a, b]:
                raise RuntimeError(f"tile {tile}: pixel {(a, b)} predicted twice or not wanted")
            seen[a, b] = True
            block[a, b] = v
    if not np.array_equal(seen, causes == 0):
        raise RuntimeError(f"tile {tile}: {int((causes == 0).sum() - seen.sum())} windows "
                           f"without a prediction")
    return tile, block, causes


@dataclasses.dataclass
class PredictMap(beam.PTransform):
    """Pipeline start -> ``(tile, block, causes)`` for every tile of the map.

    Attributes:
        scene: the scene (``scene.read_scene``).
        geometry: the map's geometry (stride, window, tile size).
        model_handler: a ``WindowModelHandler``.
        edge_mode: ``nan`` (windows reaching outside the scene are NaN) or
            ``pad`` (zeros outside the scene).
        batch_size: windows per model batch.
    """

    scene: Scene
    geometry: MapGeometry
    model_handler: WindowModelHandler
    edge_mode: str = "nan"
    batch_size: int = 8

    def expand(self, pbegin):
        from apache_beam.ml.inference.base import RunInference

        tiles = (pbegin
                 | "Geometry" >> beam.Create([self.geometry])
                 | "Tiles" >> beam.FlatMap(lambda g: list(g.tiles()))
                 | "Spread tiles" >> beam.Reshuffle())
        read = tiles | "Read tile windows" >> beam.ParDo(ReadTileWindowsFn(
            self.scene, self.geometry, self.edge_mode, self.batch_size)).with_outputs(
                ReadTileWindowsFn.CAUSES, main="batches")
        predictions = (read.batches
                       | "Run model" >> RunInference(self.model_handler)
                       | "Predictions by tile" >> beam.Map(predictions_of))
        return ({"causes": read[ReadTileWindowsFn.CAUSES], "predictions": predictions}
                | "Group by tile" >> beam.CoGroupByKey()
                | "Assemble blocks" >> beam.Map(assemble_block))

