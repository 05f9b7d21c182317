"""The released model over decoded windows (``transforms.mapping``): a
RunInference handler whose elements are ready batches of model inputs.

A map's windows are cut from raster tiles, not decoded from examples, so
this handler skips the example decoder of ``model.SoilMoistureModelHandler``
and shares everything else with it: the loader (SavedModel or frozen graph,
tensor names, thread pools, ``load_session``), and the one ``session.run``
per batch (``LoadedModel.predict_arrays``). Each element is one
``WindowBatch`` of at most ``batch_size`` windows, built by the tile reader,
so Beam batches single elements (``max_batch_size=1``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from model_runner.imports import import_tensorflow
from model_runner.model import (LoadedModel, TensorNames, configure_threads, load_session,
                                sees_only_window)
from transforms.dataset import model_interface

_LOG = logging.getLogger(__name__)

#: sessions loaded in this process by ``window_side_for`` and kept for the
#: first ``WindowModelHandler`` of this process to load the same model with
#: the same threads: a local run loads the model once, not twice
#: (``close_spare_sessions`` closes any a run did not take, e.g. when its
#: workers are other processes)
_SPARE: Dict[Tuple, Tuple] = {}
_SPARE_LOCK = threading.Lock()


def _spare_key(model_path: str, names: TensorNames, threads: Optional[int]) -> Tuple:
    return model_path, names, threads or None


def close_spare_sessions() -> None:
    """Close the sessions ``window_side_for`` kept that no handler took."""
    with _SPARE_LOCK:
        spares = list(_SPARE.values())
        _SPARE.clear()
    for session, _, _ in spares:
        session.close()


@dataclasses.dataclass
class WindowBatch:
    """Decoded model inputs of up to ``batch_size`` windows of one tile.

    Attributes:
        key: what the caller needs to place the predictions (e.g. the tile
            and the windows' map pixels).
        image, low_res, aux: ``[n, w, w, 10]``, ``[n, w, w, 4]``, ``[n, 2]`` float32.
    """

    key: Any
    image: np.ndarray
    low_res: np.ndarray
    aux: np.ndarray


class WindowModelHandler(ModelHandler):
    """RunInference handler for ``WindowBatch`` elements (paths and config only;
    the model loads in ``load_model``, once per worker process).

    Args:
        model_path: SavedModel folder or frozen ``.pb`` (local or ``gs://``).
        names: the model's tensor names.
        threads: TensorFlow threads per worker process (None: its default).
        metrics_namespace: the namespace of RunInference's metrics (the
            flow's; None: Beam's).
    """

    def __init__(self, model_path: str, names: TensorNames = TensorNames(),
                 threads: Optional[int] = None, metrics_namespace: Optional[str] = None):
        super().__init__(min_batch_size=1, max_batch_size=1)
        self.metrics_namespace = metrics_namespace
        self.model_path = model_path
        self.names = names
        self.threads = threads

    def load_model(self) -> LoadedModel:
        with _SPARE_LOCK:
            spare = _SPARE.pop(_spare_key(self.model_path, self.names, self.threads), None)
        if spare is not None:  # loaded by window_side_for in this process
            session, feeds, output = spare
        else:
            configure_threads(self.threads)
            session, feeds, output = load_session(self.model_path, self.names, self.threads)
        _LOG.info("model %s loaded for windows", self.model_path)
        return LoadedModel(session, feeds, output, decoder=None)

    def run_inference(self, batch: Sequence[WindowBatch], model: LoadedModel,
                      inference_args: Optional[Dict[str, Any]] = None
                      ) -> Iterable[PredictionResult]:
        return [PredictionResult(b, model.predict_arrays(
            {"image": b.image, "low_res": b.low_res, "aux": b.aux})) for b in batch]

    def get_num_bytes(self, batch: Sequence[WindowBatch]) -> int:
        return sum(b.image.nbytes + b.low_res.nbytes + b.aux.nbytes for b in batch)

    def get_metrics_namespace(self) -> str:
        return self.metrics_namespace or super().get_metrics_namespace()


def window_side_for(model_path: str, names: TensorNames = TensorNames(),
                    image_size: int = 512, feed_whole_images: bool = False,
                    threads: Optional[int] = None) -> int:
    """The side of the windows a map feeds the model: the model's own window
    (256) when a load-time check shows its prediction depends on nothing
    else of an ``image_size`` image (as the released model, which crops),
    else ``image_size`` (also with ``feed_whole_images``, without loading it).

    The session loaded for the check is kept for this process's first
    ``WindowModelHandler`` of the same model and ``threads`` (a local run
    then loads the model once); ``close_spare_sessions`` closes it if none
    takes it."""
    if feed_whole_images:
        return image_size
    import_tensorflow()
    configure_threads(threads)
    session, feeds, output = load_session(model_path, names, threads)
    try:
        side = (model_interface.window(image_size)[1]
                if sees_only_window(session, feeds, output, image_size) else image_size)
    except BaseException:
        session.close()
        raise
    with _SPARE_LOCK:
        old = _SPARE.pop(_spare_key(model_path, names, threads), None)
        _SPARE[_spare_key(model_path, names, threads)] = (session, feeds, output)
    if old is not None:
        old[0].close()
    return side
