"""Generate a realistic sample of the dataset shards and a matching ISMN download.

Example (the demo's sample):

    python -m pipelines.make_sample_data --output_dir sample_data \
        --num_shards 2 --examples_per_shard 16 --image_size 64 --seed 0 \
        --ismn_format ceop --ismn_layout zip

Writes ``<output_dir>/shards/data-NNNNN-of-MMMMM.tfrecord.gz``,
``<output_dir>/ismn/ISMN_sample.zip`` (or the folder ``ISMN_sample/`` with
``--ismn_layout dir``), ``<output_dir>/ground_truth.jsonl`` (each example's
expected merge outcome and label) and ``<output_dir>/manifest.json``.
See ``transforms.synthetic.generate`` for what the data contains.
"""

from __future__ import annotations

import argparse
import logging
from typing import List, Optional

from transforms import synthetic


def parse_args(argv: Optional[List[str]] = None) -> synthetic.SampleConfig:
    defaults = synthetic.SampleConfig(output_dir="")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output_dir", required=True)
    p.add_argument("--num_shards", type=int, default=defaults.num_shards)
    p.add_argument("--examples_per_shard", type=int, default=defaults.examples_per_shard)
    p.add_argument("--image_size", type=int, default=defaults.image_size,
                   help="image side in pixels (512 in the release)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--ismn_format", choices=("ceop", "header_values"), default=defaults.ismn_format)
    p.add_argument("--ismn_layout", choices=("zip", "dir"), default=defaults.ismn_layout)
    p.add_argument("--ismn_days", type=int, default=defaults.ismn_days,
                   help="length of the hourly ISMN series, days")
    p.add_argument("--start", default=defaults.start, help="first day of the ISMN series")
    return synthetic.SampleConfig(**vars(p.parse_args(argv)))


def run(argv: Optional[List[str]] = None) -> synthetic.SamplePaths:
    return synthetic.generate(parse_args(argv))


if __name__ == "__main__":
    import gc

    gc.enable()  # paused while the command's libraries were imported (see ``pipelines``)
    logging.getLogger().setLevel(logging.INFO)
    run()
