"""Training as one call: check the inputs, preprocess (Beam + tf.Transform),
fit and export, report."""

from __future__ import annotations

import tempfile
from typing import Dict

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions

from transforms import runtime
from transforms.dataset import files, schema, tfrecord_io
from transforms.training.config import TrainingConfig
from transforms.training.data import decoded_bytes, example_bytes, window_side
from transforms.training.fit import TrainingDiverged, train_and_export
from transforms.training.preprocess import NAMESPACE, Preprocess


def preprocess_shards(config: TrainingConfig, options, test_pipeline=None) -> Dict[str, object]:
    """Run the Beam + tf.Transform step.

    Args:
        config: the training's settings.
        options: the Beam ``PipelineOptions``.
        test_pipeline: a ``TestPipeline`` to run on instead (tests).

    Returns:
        What ``preprocessing.json`` records (counts per split, what was
        skipped and why, bytes per example, seconds), or the dry run's report.
    """
    clock = runtime.Stopwatch()
    cloud_temp = options.view_as(GoogleCloudOptions).temp_location
    with tempfile.TemporaryDirectory() as local_temp:
        # tf.Transform's temporary files must be readable by every worker (it
        # creates its folder while the pipeline is built, so a dry run, which
        # runs nothing, keeps it local)
        shared = cloud_temp and not runtime.is_dry_run(options)
        temp = FileSystems.join(cloud_temp, "tft") if shared else local_temp

        def build(p):
            import tensorflow_transform.beam as tft_beam

            with tft_beam.Context(temp_dir=temp):
                _ = (p
                     | "Match shards" >> tfrecord_io.MatchShards(config.input_data_path)
                     | "Preprocess" >> Preprocess(config.output_dir, config.image_size,
                                                  config.splits))

        result, dry_run = runtime.run_pipeline(options, test_pipeline, build, NAMESPACE)
    if dry_run:
        return dry_run
    counts = runtime.counters(result, NAMESPACE)
    side = window_side(config.image_size)
    examples = {split: counts.get(f"examples_{split}", 0) for split in schema.SPLITS}
    stored = [m.size_in_bytes for m in FileSystems.match(
        [FileSystems.join(config.output_dir, "transformed", "*.tfrecord.gz")])[0].metadata_list]
    return {
        "input_data_path": config.input_data_path, "image_size": config.image_size,
        "window": side, "dtype": "float16", "examples": examples,
        "skipped": {k: v for k, v in counts.items() if not k.startswith("examples_")},
        "bytes_per_example": {
            "decoded_float32_inputs": decoded_bytes(config.image_size) + 2 * 4,
            "compact": example_bytes(side),
            "compact_gzip_stored": (round(sum(stored) / sum(examples.values()))
                                    if sum(examples.values()) else None)},
        "seconds": clock.seconds()}


def _skipped_words(prepared: Dict[str, object]) -> str:
    words = [f"{n} {split}" for split, n in prepared["examples"].items()]
    words += [f"{n} {name.replace('_', ' ')}" for name, n in sorted(prepared["skipped"].items())
              if n]
    return "labelled examples: " + ", ".join(words)


def check_inputs(config: TrainingConfig) -> None:
    """Before anything runs: shards that exist, open, are not in the output
    folder and have ``config.image_size`` images; a writable output folder.

    Raises:
        UsageError, InputError: naming the shard, the sizes or the folder.
    """
    paths = runtime.input_shards(config.input_data_path)
    runtime.refuse_overwrite(paths, [FileSystems.join(config.output_dir, "*")],
                             "--input_data_path", "--output_dir")
    runtime.check_image_size(paths[0], config.image_size)
    runtime.check_writable(config.output_dir, "--output_dir")


def run_training(config: TrainingConfig, options, test_pipeline=None) -> Dict[str, object]:
    """Preprocess (or, with ``resume``, reuse ``preprocessing.json``'s data),
    fit, export ``<output_dir>/model/`` and write ``training.json``.

    Args:
        config: the training's settings.
        options: the Beam ``PipelineOptions`` (for the preprocessing).
        test_pipeline: a ``TestPipeline`` to preprocess on instead (tests).

    Returns:
        The training report (``training.json``), or a dry run's report.

    Raises:
        UsageError, InputError: see ``check_inputs``; no labelled example in
            the train split; a training loss that became NaN or infinite
            (nothing exported).
    """
    if not runtime.is_dry_run(options):
        check_inputs(config)
    runtime.apply_local_defaults(options)
    clock = runtime.Stopwatch()
    summary_path = FileSystems.join(config.output_dir, "preprocessing.json")
    if config.resume and FileSystems.exists(summary_path):
        prepared = files.read_json(summary_path)
        prepared["reused_from"] = summary_path
    else:
        prepared = preprocess_shards(config, options, test_pipeline)
        if prepared.get("dry_run"):
            return prepared
        if not prepared["examples"]["train"]:
            raise runtime.InputError(
                f"no labelled example of {config.input_data_path} is in the train split "
                f"({_skipped_words(prepared)}): merge ISMN labels first "
                f"(combine_ismn_data) or check --train_fraction")
        files.write_json_atomically(summary_path, prepared)
    try:
        report, _ = train_and_export(config.output_dir, config.image_size, config.fit(),
                                     prepared["examples"]["train"])
    except TrainingDiverged as e:
        raise runtime.InputError(str(e)) from e
    report.update(transform_seconds=prepared["seconds"], total_seconds=clock.seconds(),
                  input_data_path=config.input_data_path, preprocessing=prepared)
    files.write_json_atomically(FileSystems.join(config.output_dir, "training.json"), report)
    return report


def significant(value, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits (``0.01235``, ``123.5``), or
    ``-`` for None (a split without examples)."""
    return "-" if value is None else f"{float(value):.{digits}g}"


def report_lines(report: Dict[str, object]):
    """The lines a finished training prints, from its ``report``
    (``run_training``'s): figures to 4 significant digits (``training.json``
    keeps them whole)."""
    prepared = report["preprocessing"]
    lines = []
    if prepared.get("reused_from"):
        lines.append(f"train: --resume: using the preprocessed data of {prepared['reused_from']}")
    nonfinite = prepared.get("skipped", {}).get("nonfinite_label_skipped", 0)
    if nonfinite:
        lines.append(f"train: {runtime.plural(nonfinite, 'example')} with a NaN or infinite label "
                     f"{'was' if nonfinite == 1 else 'were'} left out")
    lines.append(f"trained on {runtime.plural(report['examples']['train'], 'example')} in "
                 f"{report['train_seconds']:.0f} s; validation RMSE "
                 f"{significant(report['rmse'].get('validation'))}, train-mean baseline "
                 f"{significant(report['rmse_train_mean'].get('validation'))}; model: "
                 f"{report['model_dir']}")
    return lines
