"""Training step 2a: the input pipeline over the compact examples (``tf.data``).

Built to keep an accelerator fed at any data size, in memory that does not
grow with it:

* the split's files are read in parallel (``interleave`` over up to
  ``parallel_reads`` files, each a GZIP ``TFRecordDataset``), in a shuffled
  file order for training;
* training examples are shuffled in a buffer bounded in **bytes**
  (``shuffle_buffer_mb``; ``buffer_examples`` turns it into a count from the
  size of one compact example);
* a batch is parsed in one ``tf.io.parse_example`` call and its float16
  images decoded, widened to float32 and normalised in parallel ``map`` calls;
* ``prefetch`` of ``PREFETCH_BATCHES`` batches overlaps all of it with the
  training step.

Normalisation is ``(x - mean) / sqrt(var)`` with the train split's statistics
(``preprocess.transformed_statistics``), the formula the exported graph uses.
"""

import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from transforms.dataset.model_interface import CHANNELS, INPUTS, window
from transforms.training.preprocess import IMAGES, LABEL, compact_feature_spec

DEFAULT_SHUFFLE_BUFFER_MB = 256
DEFAULT_PARALLEL_READS = 4
#: decoded batches kept ready ahead of the training step (a fixed number, not
#: AUTOTUNE, whose buffers may grow with the data up to half the machine's RAM)
PREFETCH_BATCHES = 2


def transformed_files(output_dir: str, split: str) -> List[str]:
    import tensorflow as tf  # tf.io.gfile: local paths and gs:// alike

    return sorted(tf.io.gfile.glob(os.path.join(output_dir, "transformed", f"{split}-*.tfrecord.gz")))


def window_side(image_size: int) -> int:
    """The side of the stored (and seen) window of ``image_size`` images."""
    return window(image_size)[1]


def decoded_bytes(side: int) -> int:
    """The float32 images of one example of side ``side``."""
    return side * side * sum(CHANNELS[key] for key in IMAGES) * 4


def example_bytes(side: int) -> int:
    """The serialized size of one compact example, near enough (images dominate)."""
    return decoded_bytes(side) // 2 + 64


def buffer_examples(side: int, shuffle_buffer_mb: float) -> int:
    """How many compact examples fit in ``shuffle_buffer_mb`` (at least 1)."""
    return max(1, int(shuffle_buffer_mb * (1 << 20)) // example_bytes(side))


def evaluation_batch(side: int, budget_mb: float = 32) -> int:
    """A batch size for evaluating whose decoded float32 inputs fit ``budget_mb``
    (at most 256): 8 examples for 256 x 256 windows."""
    return max(1, min(256, int(budget_mb * (1 << 20)) // decoded_bytes(side)))


def parse_batch(serialized, side: int, normalisation: Dict[str, Tuple[np.ndarray, np.ndarray]]):
    """A batch of compact examples -> ``({input: normalised float32}, label)``."""
    import tensorflow as tf

    f = tf.io.parse_example(serialized, compact_feature_spec())
    raw = {key: tf.cast(tf.reshape(tf.io.decode_raw(f[key], tf.float16),
                                   [-1, side, side, CHANNELS[key]]), tf.float32)
           for key in IMAGES}
    raw["aux"] = f["aux"]
    out = {}
    for key in INPUTS:
        mean, var = normalisation[key]
        out[key] = (raw[key] - tf.constant(mean)) / tf.constant(np.sqrt(var).astype(np.float32))
    return out, f[LABEL]


def dataset(files: List[str], side: int, normalisation, batch_size: int,
            shuffle_seed: Optional[int] = None,
            shuffle_buffer_mb: float = DEFAULT_SHUFFLE_BUFFER_MB,
            parallel_reads: int = DEFAULT_PARALLEL_READS):
    """The batches of ``files``; shuffled (files and examples) when ``shuffle_seed`` is given."""
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(files, tf.string, shape=[len(files)]))
    if shuffle_seed is not None:
        ds = ds.shuffle(max(1, len(files)), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP", buffer_size=1 << 20),
        cycle_length=max(1, min(parallel_reads, len(files))), num_parallel_calls=autotune)
    if shuffle_seed is not None:
        ds = ds.shuffle(buffer_examples(side, shuffle_buffer_mb), seed=shuffle_seed,
                        reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda s: parse_batch(s, side, normalisation),
                                  num_parallel_calls=autotune)
    return ds.prefetch(PREFETCH_BATCHES)
