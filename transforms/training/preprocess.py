"""Training step 1: the labelled examples as compact training data, and their statistics.

``Preprocess`` is one Beam + tf.Transform job, streaming: no step holds more
than one example per worker thread, whatever the size of the data.

* ``DecodeShardFn`` walks each shard once. Each labelled example is decoded
  by ``run_inference``'s own decoder (``transforms.dataset.decode``), cut to
  the window the model sees (``model_interface.crop_to_window``: the centre
  256 x 256 of a 512 x 512 image, exactly the model's own
  ``resize_with_crop_or_pad``) and written as a ``compact_example``: the
  window's bands as float16 bytes, the two auxiliary scalars and the label.
  Examples go to their sensor's split (``transforms.dataset.splits``, as
  ``evaluate`` splits). A 512 x 512 example shrinks from 14.7 MB of float32
  inputs to 1.8 MB.
* float16 keeps integers up to 2048 exactly and any other value within a
  relative 2^-11 (the DEM is decoded to 0-255 and SMAP/GLDAS are 0-255
  integers: exact; the scaling of the released Sentinel-1/2 and SoilGrids
  bands is unpublished, README "What is known of the encoding", so their
  exactness in float16 depends on it: integers below 2048 are exact). An
  example with a value beyond float16's range (65504) is left out and
  counted (``examples_out_of_float16_range``).
* tf.Transform analyses the **train split only** (``AnalyzeDataset``) from
  per-example summaries (each band's mean and mean square over the window,
  the scalars, the label): ``preprocessing_fn`` gives each input's per-band
  mean and variance over all pixels of all train examples (equal-sized
  windows, so exact) and the train mean of the label. They are read back with
  ``transformed_statistics``; training normalises with them and the export
  folds them into the graph.

Writes ``transform_fn/``, ``transformed_metadata/`` and
``transformed/{train,validation,test}-*.tfrecord.gz``.
"""

import dataclasses
import math
import os
from typing import Dict, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np

from transforms.dataset import example_proto, keys, schema
from transforms.dataset.counters import FlowCounters
from transforms.dataset.walks import ShardReader
from transforms.dataset.decode import BatchDecoder
from transforms.dataset.model_interface import CHANNELS, crop_to_window
from transforms.dataset.splits import SplitConfig

LABEL = schema.LABEL
NAMESPACE = "train"
COUNTERS = FlowCounters(NAMESPACE)
SUMMARIES = "train_summaries"
FLOAT16_MAX = float(np.finfo(np.float16).max)
#: The images of a compact example, stored as little-endian float16 bytes.
IMAGES = ("image", "low_res")


def decoded_examples(serialized: Sequence[bytes], size: int,
                     decoder: Optional[BatchDecoder] = None) -> list:
    """Labelled examples as ``{"image", "low_res", "aux", "label"}`` arrays.

    Args:
        serialized: serialized examples (unlabelled ones are dropped).
        size: the side of their images (decoded at full size).
        decoder: a ``BatchDecoder`` to reuse (None: one is made).
    """
    labelled, labels = [], []
    for record in serialized:
        value = keys.label_of(keys.first_values(record, schema.LABEL_KEYS))
        if value is not None:
            labelled.append(record)
            labels.append(value)
    if not labelled:
        return []
    arrays = (decoder or BatchDecoder(size)).decode(labelled)
    return [{"image": arrays["image"][i], "low_res": arrays["low_res"][i],
             "aux": arrays["aux"][i], LABEL: np.float32(labels[i])} for i in range(len(labelled))]


def compact_example(decoded: Dict[str, np.ndarray]) -> Tuple[bytes, Dict[str, np.ndarray]]:
    """A decoded example -> (its compact serialized form, its summary for the statistics).

    Raises ValueError when a value does not fit float16.
    """
    windows = {key: crop_to_window(decoded[key]) for key in IMAGES}
    for key, x in windows.items():
        if not np.all(np.abs(x) <= FLOAT16_MAX):
            raise ValueError(f"{key} has values beyond float16's range ({FLOAT16_MAX:g})")
    windows = {key: x.astype("<f2") for key, x in windows.items()}
    aux = np.asarray(decoded["aux"], np.float32)
    label = np.float32(decoded[LABEL])
    serialized = example_proto.encode_example({
        **{key: ("bytes", [x.tobytes()]) for key, x in windows.items()},
        "aux": ("float", aux), LABEL: ("float", [label])})
    summary = {"aux": aux, LABEL: label}
    for key, x in windows.items():
        wide = x.astype(np.float64)
        summary[f"{key}_mean"] = wide.mean(axis=(0, 1)).astype(np.float32)
        summary[f"{key}_sq"] = np.square(wide).mean(axis=(0, 1)).astype(np.float32)
    return serialized, summary


def compact_feature_spec():
    """How to parse a compact example (``tf.io.parse_example``); images then
    go through ``tf.io.decode_raw(..., tf.float16)`` to ``[side, side, C]``."""
    import tensorflow as tf

    spec = {key: tf.io.FixedLenFeature([], tf.string) for key in IMAGES}
    spec.update(aux=tf.io.FixedLenFeature([CHANNELS["aux"]], tf.float32),
                **{LABEL: tf.io.FixedLenFeature([], tf.float32)})
    return spec


def summary_feature_spec():
    import tensorflow as tf

    spec = {"aux": tf.io.FixedLenFeature([CHANNELS["aux"]], tf.float32),
            LABEL: tf.io.FixedLenFeature([], tf.float32)}
    for key in IMAGES:
        for what in ("mean", "sq"):
            spec[f"{key}_{what}"] = tf.io.FixedLenFeature([CHANNELS[key]], tf.float32)
    return spec


def preprocessing_fn(inputs):
    """tf.Transform over per-example summaries (``inputs``: the batch of
    ``summary_feature_spec`` features): per-band mean and variance of each
    input over all pixels of the analysed examples, and the label mean."""
    import tensorflow as tf
    import tensorflow_transform as tft

    per_example = {key: (inputs[f"{key}_mean"], inputs[f"{key}_sq"]) for key in IMAGES}
    per_example["aux"] = (inputs["aux"], tf.square(inputs["aux"]))
    batch = tf.shape(inputs[LABEL])[0]
    out = {}
    for key, (values, squares) in per_example.items():
        mean = tft.mean(values, reduce_instance_dims=False)
        var = tf.maximum(tft.mean(squares, reduce_instance_dims=False) - tf.square(mean), 1e-12)
        out[f"{key}_mean"] = tf.tile(mean[None, :], [batch, 1])
        out[f"{key}_var"] = tf.tile(var[None, :], [batch, 1])
    out[f"{LABEL}_mean"] = tf.fill([batch], tft.mean(inputs[LABEL]))
    return out


def normalisation_from(stats: Dict[str, np.ndarray]) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """``transformed_statistics`` -> ``{input: (mean, variance)}``."""
    return {k: (np.asarray(stats[f"{k}_mean"], np.float32), np.asarray(stats[f"{k}_var"], np.float32))
            for k in CHANNELS}


def transformed_statistics(output_dir: str) -> Dict[str, np.ndarray]:
    """The analysers' results (``*_mean``, ``*_var``, ``label_mean``) from
    ``<output_dir>/transform_fn/``."""
    import tensorflow as tf
    import tensorflow_transform as tft

    zeros = {name: tf.zeros([1, *spec.shape], spec.dtype)
             for name, spec in summary_feature_spec().items()}
    out = tft.TFTransformOutput(output_dir).transform_raw_features(zeros)
    return {k: v.numpy()[0] for k, v in out.items()}


class DecodeShardFn(beam.DoFn):
    """Shard -> compact labelled examples tagged by split, and the train split's summaries.

    Args:
        size: the side of the examples' images.
        splits: the split rule that tags each example.
    """

    def __init__(self, size: int, splits: SplitConfig):
        self.size = size
        self.splits = splits
        self._decoder = None

    def setup(self):
        self._decoder = BatchDecoder(self.size)  # compiled once per DoFn instance

    def process(self, shard: str):
        import tensorflow as tf

        reader = ShardReader(shard)
        for index, record in reader:
            try:
                found = keys.first_values(record, (schema.SENSOR_ID, *schema.LABEL_KEYS))
            except example_proto.MalformedExampleError:
                COUNTERS("malformed_skipped").inc()
                continue
            sensor_id, label = keys.sensor_id_of(found), keys.label_of(found)
            if label is not None and not math.isfinite(label):
                COUNTERS("nonfinite_label_skipped").inc()  # a NaN reading the merge kept
                continue
            split = None if sensor_id is None or label is None else self.splits.split(sensor_id)
            if split is None:
                continue
            try:
                arrays = self._decoder.decode([record])
                serialized, summary = compact_example(
                    {**{k: v[0] for k, v in arrays.items()}, LABEL: label})
            except tf.errors.InvalidArgumentError:
                COUNTERS("undecodable_skipped").inc()
                continue
            except ValueError:
                COUNTERS("examples_out_of_float16_range").inc()
                continue
            COUNTERS(f"examples_{split}").inc()
            yield beam.pvalue.TaggedOutput(split, serialized)
            if split == "train":
                yield beam.pvalue.TaggedOutput(SUMMARIES, summary)
        if reader.corrupt is not None:
            COUNTERS("shards_incomplete").inc()


@dataclasses.dataclass
class Preprocess(beam.PTransform):
    """Shard paths -> compact examples and tf.Transform statistics under
    ``output_dir`` (see the module doc). Run inside ``tft_beam.Context(temp_dir=...)``.

    Attributes:
        output_dir: the training's output folder.
        image_size: the side of the examples' images.
        splits: the split rule.
    """

    output_dir: str
    image_size: int
    splits: SplitConfig = SplitConfig()

    def expand(self, shards):
        import tensorflow_transform.beam as tft_beam
        from tensorflow_transform.tf_metadata import dataset_metadata

        examples = (shards
                    | "Spread shards" >> beam.Reshuffle()
                    | "Decode and compact" >> beam.ParDo(DecodeShardFn(self.image_size, self.splits))
                    .with_outputs(*schema.SPLITS, SUMMARIES))
        for split in schema.SPLITS:
            _ = examples[split] | f"Write {split}" >> beam.io.WriteToTFRecord(
                os.path.join(self.output_dir, "transformed", split),
                file_name_suffix=".tfrecord.gz")
        metadata = dataset_metadata.DatasetMetadata.from_feature_spec(summary_feature_spec())
        transform_fn = ((examples[SUMMARIES], metadata)
                        | "Analyze train" >> tft_beam.AnalyzeDataset(preprocessing_fn))
        _ = transform_fn | "Write transform_fn" >> tft_beam.WriteTransformFn(self.output_dir)
