"""Loading the released TF1 model and running it on batches, for Beam's RunInference.

``load_session`` opens either a TF1 SavedModel directory (tag ``serve``, the
released layout) or a frozen ``GraphDef`` file (``.pb``, constants only) in a
``tf.compat.v1.Session`` and checks the input/output tensor names, listing
the graph's placeholders when one is missing.

``SoilMoistureModelHandler`` is a ``ModelHandler`` that stores only paths and
config (so it pickles cleanly to workers) and loads in ``load_model``; Beam's
``RunInference`` then keeps one loaded session per worker process, shared by
its threads, and batches elements (``batch_size``). A batch is parsed and
decoded with TensorFlow ops (``transforms.dataset.decode.BatchDecoder``) and run in one
``session.run``. Elements are ``(key, serialized_example)``; each result's
``inference`` is a float prediction, or a ``DecodeFailure`` for an example
that lacks a band or has the wrong image size (the rest of the batch goes on).
"""

import dataclasses
import logging
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from model_runner.imports import import_quickly, import_tensorflow
from transforms.dataset.decode import BatchDecoder
from transforms.dataset.model_interface import INPUT_TENSORS as DEFAULT_INPUTS
from transforms.dataset.model_interface import OUTPUT_TENSOR as DEFAULT_OUTPUT
from transforms.dataset.model_interface import SERVE_TAG
from transforms.dataset.model_interface import window as model_window

_LOG = logging.getLogger(__name__)


class ModelLoadError(Exception):
    """The model path or its interface is not usable; the message says why."""


@dataclasses.dataclass(frozen=True)
class DecodeFailure:
    reason: str


@dataclasses.dataclass(frozen=True)
class TensorNames:
    image: str = DEFAULT_INPUTS["image"]
    low_res: str = DEFAULT_INPUTS["low_res"]
    aux: str = DEFAULT_INPUTS["aux"]
    output: str = DEFAULT_OUTPUT

    def inputs(self) -> Dict[str, str]:
        return {"image": self.image, "low_res": self.low_res, "aux": self.aux}


class LoadedModel:
    """A session over the model graph, its tensors, and a batch decoder."""

    def __init__(self, session, feeds: Dict[str, Any], output, decoder: BatchDecoder):
        self.session = session
        self.feeds = feeds
        self.output = output
        self.decoder = decoder

    def close(self) -> None:
        self.session.close()

    def predict_arrays(self, arrays: Dict[str, np.ndarray]) -> np.ndarray:
        """One ``session.run`` on decoded inputs; one float32 per example."""
        out = self.session.run(self.output, {self.feeds[k]: arrays[k] for k in self.feeds})
        out = np.asarray(out, dtype=np.float32)
        return out.reshape(out.shape[0], -1)[:, 0]


def _placeholders(graph) -> str:
    found = [f"{op.name}:0 {op.outputs[0].dtype.name}{op.outputs[0].shape}"
             for op in graph.get_operations() if op.type == "Placeholder"]
    return ", ".join(found) or "none"


def _frozen_graph_def(local: str, model_path: str):
    """The GraphDef in the frozen ``.pb`` at ``local`` (raises ModelLoadError)."""
    import_tensorflow()
    from tensorflow.core.framework import graph_pb2

    graph_def = graph_pb2.GraphDef()
    try:
        with open(local, "rb") as f:
            graph_def.ParseFromString(f.read())
    except Exception as e:
        raise ModelLoadError(f"{model_path} is not a frozen GraphDef: {e}") from e
    return graph_def


def _serving_meta_graph(local: str, model_path: str):
    """The MetaGraph tagged ``serve`` of the SavedModel folder ``local``
    (raises ModelLoadError when there is none, listing the tags present)."""
    import_tensorflow()
    from tensorflow.core.protobuf import saved_model_pb2

    pb = os.path.join(local, "saved_model.pb")
    if not os.path.exists(pb):
        raise ModelLoadError(f"{model_path} has no saved_model.pb (expected the released "
                             "layout: saved_model.pb, graph_def.pbtxt, variables/)")
    sm = saved_model_pb2.SavedModel()
    try:
        with open(pb, "rb") as f:
            sm.ParseFromString(f.read())
    except Exception as e:  # protobuf's DecodeError names no file
        raise ModelLoadError(f"{pb} is not a SavedModel: {type(e).__name__}: {e}") from e
    for mg in sm.meta_graphs:
        if SERVE_TAG in mg.meta_info_def.tags:
            return mg
    raise ModelLoadError(f"{model_path} has no MetaGraph tagged '{SERVE_TAG}' (tags present: "
                         f"{[list(mg.meta_info_def.tags) for mg in sm.meta_graphs]})")


def configure_threads(threads: Optional[int]) -> None:
    """Size TensorFlow's thread pools in this process (None: TensorFlow's
    default, one thread per core). N worker processes on N cores each want
    one, or they oversubscribe the cores. Only effective before TensorFlow
    runs its first op in the process."""
    if not threads:
        return
    tf = import_tensorflow()

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised here (e.g. in-process tests): keep it
        pass


def load_session(model_path: str, names: TensorNames = TensorNames(),
                 threads: Optional[int] = None):
    """``(session, feeds, output_tensor)`` for a SavedModel dir or a frozen ``.pb``;
    ``threads``: the session's intra- and inter-op threads (None: TensorFlow's default)."""
    tf = import_tensorflow()

    v1 = tf.compat.v1
    local = _local_copy(model_path)
    graph = tf.Graph()
    config = (v1.ConfigProto(intra_op_parallelism_threads=threads,
                             inter_op_parallelism_threads=threads) if threads else None)
    with graph.as_default():
        if os.path.isfile(local):
            v1.import_graph_def(_frozen_graph_def(local, model_path), name="")
            session = v1.Session(graph=graph, config=config)
        elif os.path.isdir(local):
            _serving_meta_graph(local, model_path)  # clear errors before TF's own
            session = v1.Session(graph=graph, config=config)
            v1.saved_model.loader.load(session, [SERVE_TAG], local)
        else:
            raise ModelLoadError(f"model path {model_path} does not exist")
    tensors = {}
    for role, name in (*names.inputs().items(), ("output", names.output)):
        try:
            tensors[role] = graph.get_tensor_by_name(name)
        except (KeyError, ValueError) as e:
            session.close()
            raise ModelLoadError(
                f"tensor {name!r} ({role}) is not in the graph of {model_path}; "
                f"its placeholders are: {_placeholders(graph)}") from e
    output = tensors.pop("output")
    return session, tensors, output


def check_model(model_path: str, names: TensorNames = TensorNames()) -> None:
    """A light check before a run: the model exists, is a SavedModel tagged
    ``serve`` or a frozen GraphDef, and its graph has the tensors named in
    ``names`` (nodes only: no session, no variables). Raises ModelLoadError.
    Remote (``gs://``) models are checked when a worker loads them."""
    if "://" in model_path:
        return
    if os.path.isfile(model_path):
        graph_def = _frozen_graph_def(model_path, model_path)
    elif os.path.isdir(model_path):
        graph_def = _serving_meta_graph(model_path, model_path).graph_def
    else:
        raise ModelLoadError(f"model path {model_path} does not exist")
    nodes = {n.name: n.op for n in graph_def.node}
    for role, name in (*names.inputs().items(), ("output", names.output)):
        if name.split(":")[0] not in nodes:
            placeholders = ", ".join(f"{n}:0" for n, op in nodes.items() if op == "Placeholder")
            raise ModelLoadError(f"tensor {name!r} ({role}) is not in the graph of {model_path}; "
                                 f"its placeholders are: {placeholders or 'none'}")


def _local_copy(model_path: str) -> str:
    """Local path of the model; ``gs://`` (or other Beam filesystems) are copied once."""
    if "://" not in model_path:
        return model_path
    import hashlib
    import tempfile

    from apache_beam.io.filesystems import FileSystems

    target = os.path.join(tempfile.gettempdir(), "soil-moisture-model-"
                          + hashlib.sha1(model_path.encode()).hexdigest()[:12])
    if os.path.exists(target):
        return target
    root = model_path.rstrip("/")
    matches = FileSystems.match([root + "/**"])[0].metadata_list
    if not matches:  # a single file
        matches = FileSystems.match([root])[0].metadata_list
        if not matches:
            raise ModelLoadError(f"model path {model_path} does not exist")
        with FileSystems.open(root) as src, open(target, "wb") as dst:
            dst.write(src.read())
        return target
    staging = target + ".partial"
    for m in matches:
        dest = os.path.join(staging, os.path.relpath(m.path, root))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with FileSystems.open(m.path) as src, open(dest, "wb") as dst:
            dst.write(src.read())
    os.replace(staging, target)
    return target


CPU_BATCH_SIZE = 8
#: on a GPU a batch of 64 windows (256x256, 14 bands) is ~235 MB of float32 inputs
GPU_BATCH_SIZE = 64


def local_gpus() -> int:
    """NVIDIA GPUs this machine shows TensorFlow (by the driver's list, without
    starting TensorFlow; ``CUDA_VISIBLE_DEVICES`` "" or "-1" hides them)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return 0
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0


def default_batch_size(gpu: bool) -> int:
    """Examples per ``session.run`` when ``--batch_size`` is not given."""
    return GPU_BATCH_SIZE if gpu else CPU_BATCH_SIZE


def _devices(session) -> str:
    gpus = [d.name for d in session.list_devices() if d.device_type == "GPU"]
    return ", ".join(gpus) if gpus else "CPU"


def _pre_clip(output):
    """The tensor ``clip_by_value`` clips (``output`` itself when the op is not
    the usual Maximum(Minimum(x, hi), lo) or ClipByValue)."""
    op = output.op
    if op.type == "ClipByValue":
        return op.inputs[0]
    if op.type == "Maximum" and op.inputs[0].op.type == "Minimum":
        return op.inputs[0].op.inputs[0]
    return output


def sees_only_window(session, feeds: Dict[str, Any], output, size: int, seed: int = 0) -> bool:
    """Whether the model's prediction depends only on the centre window of its
    images (``model_interface.window``), as the released model's does (it
    crops them to 256x256 itself) — checked, not assumed.

    Two random examples that differ only outside the window must give equal
    outputs, and feeding the window alone must give the same (within 1e-6).
    The value before the final clip is compared where the graph has one, so a
    saturated output cannot hide a difference. Costs three ``session.run``
    of one example at load time.
    """
    offset, side = model_window(size)
    if side == size:
        return False
    rng = np.random.default_rng(seed)
    probe = _pre_clip(output)
    inside = (slice(None), slice(offset, offset + side), slice(offset, offset + side))

    def run(images, aux):
        values = {**images, "aux": aux}
        return np.asarray(session.run(probe, {feeds[k]: values[k] for k in feeds}), np.float64)

    try:
        shapes = {key: feed.shape.as_list() for key, feed in feeds.items()}
        first = {key: rng.uniform(0, 255, (1, size, size, shapes[key][-1])).astype(np.float32)
                 for key in ("image", "low_res")}
        other = {key: rng.uniform(0, 255, a.shape).astype(np.float32) for key, a in first.items()}
        for key in other:
            other[key][inside] = first[key][inside]
        aux = rng.uniform(0, 1, (1, shapes["aux"][-1])).astype(np.float32)
        full = run(first, aux)
        return bool(np.array_equal(full, run(other, aux)) and np.allclose(
            full, run({k: np.ascontiguousarray(a[inside]) for k, a in first.items()}, aux),
            rtol=0, atol=1e-6))
    except Exception:  # unknown channel counts, or a graph that refuses a window-sized
        return False  # input: feed whole images


class SoilMoistureModelHandler(ModelHandler):
    """RunInference handler for the released model interface (paths and config
    only; the model loads in ``load_model``, once per worker process).

    Args:
        model_path: SavedModel folder or frozen ``.pb`` (local or ``gs://``).
        image_size: the side of the examples' images.
        batch_size: the most examples one ``session.run`` gets (Beam's
            ``max_batch_size``; Beam may form smaller batches).
        names: the model's tensor names.
        threads: TensorFlow threads per worker process (None: its default).
        feed_window: when the model's prediction depends only on the centre
            window of its images (checked at load by ``sees_only_window``),
            decode and feed only that window: the same predictions (tested)
            from a quarter of the pixels at 512x512. False: always feed whole
            images.
        metrics_namespace: the namespace of RunInference's metrics (the
            flow's, so they sit beside its own counters; None: Beam's).
    """

    def __init__(self, model_path: str, image_size: int = 512, batch_size: int = 8,
                 names: TensorNames = TensorNames(), threads: Optional[int] = None,
                 feed_window: bool = True, metrics_namespace: Optional[str] = None):
        super().__init__(min_batch_size=1, max_batch_size=batch_size)
        self.metrics_namespace = metrics_namespace
        self.model_path = model_path
        self.image_size = image_size
        self.batch_size = batch_size
        self.names = names
        self.threads = threads  # TensorFlow threads per worker process (None: its default)
        self.feed_window = feed_window

    def load_model(self) -> LoadedModel:
        configure_threads(self.threads)
        session, feeds, output = load_session(self.model_path, self.names, self.threads)
        window = None
        if self.feed_window and sees_only_window(session, feeds, output, self.image_size):
            window = model_window(self.image_size)
        _LOG.info("model %s loaded on %s; feeding %s", self.model_path, _devices(session),
                  f"the {window[1]}x{window[1]} window at offset {window[0]}" if window
                  else f"whole {self.image_size}x{self.image_size} images")
        import_quickly("transforms.dataset.varints")  # numba: the decoder's compiled loops
        decoder = BatchDecoder(self.image_size, window, self.threads or os.cpu_count() or 1)
        return LoadedModel(session, feeds, output, decoder)

    def run_inference(self, batch: Sequence[bytes], model: LoadedModel,
                      inference_args: Optional[Dict[str, Any]] = None) -> Iterable[PredictionResult]:
        return [PredictionResult(example, inference)
                for example, inference in zip(batch, predict_serialized(model, batch))]

    def get_num_bytes(self, batch: Sequence[bytes]) -> int:
        """The serialized size (Beam's default pickles the whole batch to measure it)."""
        return sum(len(example) for example in batch)

    def get_metrics_namespace(self) -> str:
        return self.metrics_namespace or super().get_metrics_namespace()

    def share_model_across_processes(self) -> bool:
        return False


def predict_serialized(model: LoadedModel, batch: Sequence[bytes]) -> List[Any]:
    """A float per example, or a ``DecodeFailure`` for examples that cannot be decoded."""
    tf = import_tensorflow()

    try:
        arrays = model.decoder.decode(batch)
    except tf.errors.InvalidArgumentError:
        return _predict_valid_only(model, batch)
    return [float(v) for v in model.predict_arrays(arrays)]


def _predict_valid_only(model: LoadedModel, batch: Sequence[bytes]) -> List[Any]:
    decoded = model.decoder.decode_each(batch)
    good = [i for i, (arrays, _) in enumerate(decoded) if arrays is not None]
    results: List[Any] = [DecodeFailure(reason) for _, reason in decoded]
    if good:
        stacked = {k: np.stack([decoded[i][0][k] for i in good]) for k in decoded[good[0]][0]}
        for i, value in zip(good, model.predict_arrays(stacked)):
            results[i] = float(value)
    return results


def keyed_examples(handler: SoilMoistureModelHandler):
    """The handler wrapped for ``(key, serialized)`` elements."""
    from apache_beam.ml.inference.base import KeyedModelHandler

    return KeyedModelHandler(handler)
