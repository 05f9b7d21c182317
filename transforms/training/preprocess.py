"""Training step 1: decode the labelled examples, split them, normalise with tf.Transform.

* ``decoded_examples``: serialized examples -> the model's decoded inputs and
  label, through ``transforms.dataset.decode.BatchDecoder``, the decoder
  ``run_inference`` uses (shared code, not a copy).
* ``preprocessing_fn``: tf.Transform. Each band is normalised with full-pass
  statistics over all its pixels: ``(x - mean) / sqrt(var)``, mean and
  variance from ``tft.mean`` of the per-example band means and of the
  per-example means of squares (equal-sized images, so exact). The statistics
  are also emitted as features (``*_mean``, ``*_var``) so the exporter can
  fold them into the exported graph.
* ``Preprocess``: the Beam + tf.Transform job. Examples are split by sensor
  (``transforms.dataset.splits``, as ``evaluate`` does), the statistics are
  analysed on the train split only (``AnalyzeAndTransformDataset``) and the
  validation and test splits transformed with them (``TransformDataset``).
  It writes ``transform_fn/``, ``transformed_metadata/`` and
  ``transformed/{train,validation,test}-*.tfrecord.gz``.
"""

import dataclasses
import os
from typing import Dict, List, Sequence, Tuple

import apache_beam as beam
import numpy as np

from transforms.dataset import example_proto, records, schema, tfrecord_io
from transforms.dataset.decode import BatchDecoder
from transforms.dataset.model_interface import CHANNELS, INPUTS
from transforms.dataset.splits import SplitConfig

LABEL = schema.LABEL
NAMESPACE = "train"
COUNTERS = records.FlowCounters(NAMESPACE)


def decoded_examples(serialized: Sequence[bytes], size: int, decoder=None) -> List[Dict[str, np.ndarray]]:
    """Labelled examples -> ``{"image", "low_res", "aux", "label"}`` (unlabelled ones dropped).

    ``decoder``: a ``BatchDecoder`` to reuse (one is built otherwise).
    """
    labelled, labels = [], []
    for record in serialized:
        value = records.label_of(records.first_values(record, schema.LABEL_KEYS))
        if value is not None:
            labelled.append(record)
            labels.append(value)
    if not labelled:
        return []
    arrays = (decoder or BatchDecoder(size)).decode(labelled)
    return [{"image": arrays["image"][i], "low_res": arrays["low_res"][i],
             "aux": arrays["aux"][i], LABEL: np.float32(labels[i])} for i in range(len(labelled))]


def raw_feature_spec(size: int):
    import tensorflow as tf

    return {"image": tf.io.FixedLenFeature([size, size, CHANNELS["image"]], tf.float32),
            "low_res": tf.io.FixedLenFeature([size, size, CHANNELS["low_res"]], tf.float32),
            "aux": tf.io.FixedLenFeature([CHANNELS["aux"]], tf.float32),
            LABEL: tf.io.FixedLenFeature([], tf.float32)}


def preprocessing_fn(inputs):
    """tf.Transform: per-band full-pass normalisation of the decoded inputs."""
    import tensorflow as tf
    import tensorflow_transform as tft

    out = {LABEL: inputs[LABEL]}
    for key in INPUTS:
        x = inputs[key]
        axes = list(range(1, len(x.shape) - 1))
        per_example = tf.reduce_mean(x, axis=axes) if axes else x
        per_example_sq = tf.reduce_mean(tf.square(x), axis=axes) if axes else tf.square(x)
        mean = tft.mean(per_example, reduce_instance_dims=False)
        mean_sq = tft.mean(per_example_sq, reduce_instance_dims=False)
        var = tf.maximum(mean_sq - tf.square(mean), 1e-12)
        out[key] = (x - mean) / tf.sqrt(var)
        batch = tf.shape(x)[0]
        out[f"{key}_mean"] = tf.tile(mean[None, :], [batch, 1])
        out[f"{key}_var"] = tf.tile(var[None, :], [batch, 1])
    return out


def normalisation_from(transformed_example: Dict[str, np.ndarray]) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    return {k: (np.asarray(transformed_example[f"{k}_mean"], np.float32),
                np.asarray(transformed_example[f"{k}_var"], np.float32))
            for k in INPUTS}


# --------------------------------------------------------------------------
# The network (one definition for training and export)


class DecodeShardFn(beam.DoFn):
    """Shard -> decoded labelled examples, tagged by the sensor split."""

    def __init__(self, size: int, splits, batch: int = 16):
        self.size = size
        self.splits = splits
        self.batch = batch
        self._decoder = None

    def setup(self):
        self._decoder = BatchDecoder(self.size)  # compiled once per DoFn instance

    def process(self, shard: str):
        pending = {s: [] for s in schema.SPLITS}
        for record in tfrecord_io.read_shard(shard):
            try:
                sensor_id = records.sensor_id_of(records.first_values(record, [schema.SENSOR_ID]))
            except example_proto.MalformedExampleError:
                COUNTERS("malformed_skipped").inc()
                continue
            split = self.splits.split(sensor_id) if sensor_id is not None else None
            if split is None:
                continue
            pending[split].append(record)
            if len(pending[split]) == self.batch:
                yield from self._flush(split, pending[split])
        for split, batch in pending.items():
            yield from self._flush(split, batch)

    def _flush(self, split, batch):
        for example in decoded_examples(batch, self.size, self._decoder):
            COUNTERS(f"examples_{split}").inc()
            yield beam.pvalue.TaggedOutput(split, example)
        batch.clear()


def encode_transformed(example) -> bytes:
    return example_proto.encode_example(
        {k: ("float", np.asarray(v, np.float32).ravel()) for k, v in example.items()})


@dataclasses.dataclass
class Preprocess(beam.PTransform):
    """Shard paths -> tf.Transform outputs under ``output_dir`` (see the module doc).

    Run inside ``tft_beam.Context(temp_dir=...)``.
    """

    output_dir: str
    image_size: int
    splits: SplitConfig = SplitConfig()

    def expand(self, shards):
        import tensorflow_transform.beam as tft_beam
        from tensorflow_transform.tf_metadata import dataset_metadata

        metadata = dataset_metadata.DatasetMetadata.from_feature_spec(
            raw_feature_spec(self.image_size))
        examples = (shards
                    | "Spread shards" >> beam.Reshuffle()
                    | "Decode labelled" >> beam.ParDo(DecodeShardFn(self.image_size, self.splits))
                    .with_outputs(*schema.SPLITS))
        (train_t, _), transform_fn = (
            (examples.train, metadata)
            | "Analyze and transform train" >> tft_beam.AnalyzeAndTransformDataset(
                preprocessing_fn, output_record_batches=False))
        outputs = {"train": train_t}
        for split in ("validation", "test"):
            (outputs[split], _) = (
                ((getattr(examples, split), metadata), transform_fn)
                | f"Transform {split}" >> tft_beam.TransformDataset(output_record_batches=False))
        _ = transform_fn | "Write transform_fn" >> tft_beam.WriteTransformFn(self.output_dir)
        for split, pcoll in outputs.items():
            _ = (pcoll
                 | f"Encode {split}" >> beam.Map(encode_transformed)
                 | f"Write {split}" >> beam.io.WriteToTFRecord(
                     os.path.join(self.output_dir, "transformed", split),
                     file_name_suffix=".tfrecord.gz"))
