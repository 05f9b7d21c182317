"""Merge ISMN in-situ soil-moisture labels into the released dataset shards.

The Beam version of the released ``combine_ismn_data.py``: same rules, same
labels, same counters, at any scale (see ``transforms.merge`` for the design).

Locally (no ``--runner``: Beam's in-process runner, never the network)::

    python -m pipelines.combine_ismn_data \
        --input_data_path 'shards/data-*-of-00500.tfrecord.gz' \
        --ismn_data_path ~/Downloads/ISMN_2015_2022.zip \
        --output_dir merged/ \
        --direct_num_workers 8 --direct_running_mode multi_processing

On Dataflow::

    python -m pipelines.combine_ismn_data \
        --input_data_path 'gs://eoscience-public/soil_moisture_retrieval_data/data-*-of-00500.tfrecord.gz' \
        --ismn_data_path gs://my-bucket/ismn/ISMN_2015_2022.zip \
        --output_dir gs://my-bucket/soil_moisture_full/ \
        --runner DataflowRunner --project my-project --region us-central1 \
        --temp_location gs://my-bucket/tmp --setup_file ./setup.py \
        --experiments use_runner_v2 --machine_type n2-standard-4 \
        --disk_size_gb 100 --max_num_workers 50

Outputs in ``--output_dir``: one ``data-NNNNN-of-MMMMM.tfrecord.gz`` per input
shard (same name and record order; labelled examples only), ``failures.jsonl``
(one line per example not written, with shard, index, sensor_id, timestamp,
kind and reason), ``shards.jsonl`` (one report per input shard) and
``ismn_provenance.jsonl`` (which ISMN snapshot labelled the data) and
``summary.json`` (totals, provenance, shard list, elapsed time). Prints
``Total success: S, Total lookup failures: L, Total value failures: V``
exactly like the released script (S counts every example written, already
labelled ones included), then a line breaking S down. Exits 2 on a usage
error found before running (no input shards, two inputs with one file name,
an output that would replace an input), 1 if a shard could not be read to its
end or an ISMN file or the ISMN download could not be read.

The released ``--num_workers N`` is accepted: locally it means
``--direct_num_workers N --direct_running_mode multi_processing``; on Dataflow
it is Dataflow's own initial worker count.
"""

from __future__ import annotations

import sys
from typing import List, Optional

from apache_beam.options.pipeline_options import PipelineOptions

from transforms import merge, runtime


class CombineIsmnOptions(PipelineOptions):
    """The merge's own flags (``--output_dir`` is ``runtime.OutputDirOptions``'s)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        runtime.add_ismn_arguments(parser)  # shared with validate_map
        parser.add_argument("--nonfinite_readings_as_value_failures", action="store_true",
                            default=False,
                            help="a NaN or infinite ISMN reading is a value failure (default: "
                                 "written as a NaN label, as the released script does, and "
                                 "counted as nonfinite_labels)")
        parser.add_argument("--match_sensor_type", action="store_true", default=False,
                            help="at a station with several 0.05 m soil-moisture sensors, use "
                                 "the one whose instrument is the sensor_id's sensor type "
                                 "(default: the released choice, the first listed)")


OPTION_CLASSES = (runtime.ShardInputOptions, runtime.OutputDirOptions, CombineIsmnOptions,
                  runtime.ProgressOptions)


def run(argv: Optional[List[str]] = None, test_pipeline=None) -> dict:
    """Run the merge; returns the summary (also written to ``summary.json``)."""
    options = PipelineOptions(argv)
    config = merge.MergeConfig.from_options(options)
    summary = merge.run_merge(config, options, test_pipeline)
    if summary.get("dry_run"):
        return summary
    out, err = merge.summary_lines(summary, config.output_dir)
    print("\n".join(out))
    for line in err:
        print(line, file=sys.stderr)
    return summary


def main(argv: Optional[List[str]] = None) -> int:
    return runtime.cli_main("combine_ismn_data", run, merge.exit_code, argv,
                            option_classes=OPTION_CLASSES, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
