"""Inference as one call: sample mode (``run_samples``) or a full run over
every example (``run_predictions``), with their checks, summary and exit status."""

from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional

import apache_beam as beam
import numpy as np

from model_runner.model import DecodeFailure, ModelLoadError, check_model, keyed_examples
from transforms import runtime
from transforms.dataset import files, model_interface, tfrecord_io
from transforms.inference.config import InferenceConfig
from transforms.inference.pipeline import NAMESPACE, PredictShards
from transforms.inference.sample import sample_predictions
from transforms.inference.sinks import WritePredictions, output_patterns, outputs_of_run


def check_model_flags(config: InferenceConfig) -> None:
    """The model exists and has the tensors the flags name.

    Args:
        config: the run's settings (``exported_model_dir``, the tensor names).

    Raises:
        UsageError: ``--exported_model_dir`` does not exist.
        InputError: it is not a model, or lacks a named tensor.
    """
    path = config.exported_model_dir
    if "://" not in path and not os.path.exists(path):
        raise runtime.UsageError(f"--exported_model_dir {path} does not exist")
    try:
        check_model(path, config.names)
    except ModelLoadError as e:
        hint = (" (see --image_tensor, --low_res_tensor, --aux_tensor, --output_tensor)"
                if "tensor " in str(e) else "")
        raise runtime.InputError(f"{e}{hint}") from e


def run_samples(config: InferenceConfig, emit: Callable[[str, bool], None]) -> Dict[str, object]:
    """The released script's sample mode: ``Prediction {i}: {value}`` for each
    of ``num_inference_samples`` examples after ``num_skip_samples``, handed
    to ``emit(line, is_error)`` as each batch is predicted; a corrupt shard
    ends the run after what came before it.

    Args:
        config: the run's settings.
        emit: called with each printed line and whether it goes to stderr.

    Returns:
        ``{"samples": [(shard, index, value)], "error": str or None,
        "saturated": predictions on the clip bounds, "all_saturated": bool}``.

    Raises:
        UsageError, InputError: no shard, images of another size, no model.
    """
    paths = runtime.input_shards(config.input_data_path)
    runtime.check_image_size(paths[0], config.image_size, config.trained_on())
    check_model_flags(config)
    results, error = [], None
    try:
        for i, (shard, index, value) in enumerate(sample_predictions(
                paths, config.handler(), config.num_inference_samples, config.num_skip_samples)):
            results.append((shard, index, value))
            if isinstance(value, DecodeFailure):
                emit(f"Prediction {i}: failed ({shard} record {index}): {value.reason}", False)
            else:
                emit(f"Prediction {i}: {str(np.float32(value))}", False)
    except tfrecord_io.CorruptShardError as e:
        error = str(e)
        emit(f"run_inference: error: {e}", True)
    if error is None and len(results) < config.num_inference_samples:
        emit(f"run_inference: only {len(results)} examples after skipping "
             f"{config.num_skip_samples} (asked for {config.num_inference_samples})", True)
    values = [v for _, _, v in results if not isinstance(v, DecodeFailure)]
    saturated = int(model_interface.saturated(values).sum()) if values else 0
    line = model_interface.saturation_line("run_inference", saturated, len(values), "examples")
    if line:
        emit(line, True)
    return {"samples": results, "error": error, "saturated": saturated,
            "all_saturated": model_interface.all_saturated(saturated, len(values))}


def build(p: beam.Pipeline, config: InferenceConfig, progress_dir: Optional[str] = None):
    """Add a full run to ``p``: every example predicted, written by ``WritePredictions``.

    Args:
        p: the pipeline to add the run to.
        config: the run's settings.
        progress_dir: where local runs report progress (None: nowhere).

    Returns:
        The names of the prediction files written (a PCollection).
    """
    shards = p | "Match shards" >> tfrecord_io.MatchShards(config.input_data_path)
    out = shards | "Predict" >> PredictShards(keyed_examples(config.handler()), progress_dir)
    out | "Write predictions" >> WritePredictions(config.output_path, config.output_format)
    return out


def run_predictions(config: InferenceConfig, options, test_pipeline=None) -> Dict[str, object]:
    """Predict every example of ``config.input_data_path``.

    Args:
        config: the run's settings.
        options: the Beam ``PipelineOptions`` (runner, workers, cloud flags).
        test_pipeline: a ``TestPipeline`` to run on instead (tests).

    Returns:
        The summary (also ``<output_path>-summary.json``): counters,
        examples read, predicted and failed, ``accounted``, ``outputs`` (the
        files written) and ``stale_outputs``; or a dry run's report.

    Raises:
        UsageError: no shard, an output that would replace an input, an
            unwritable output folder, no model.
        InputError: images of another size, a matched shard that cannot be
            opened, a file that is not a model.
    """
    if not runtime.is_dry_run(options):
        paths = runtime.input_shards(config.input_data_path)
        runtime.refuse_overwrite(paths, output_patterns(config.output_path, config.output_format),
                                 "--input_data_path", "--output_path")
        runtime.check_image_size(paths[0], config.image_size, config.trained_on())
        check_model_flags(config)
        runtime.check_writable(os.path.dirname(config.output_path) or ".", "--output_path")
    runtime.apply_local_defaults(options)
    clock = runtime.Stopwatch()
    with runtime.local_progress(options, PredictShards.STAGES,
                                config.input_data_path) as progress:
        result, dry_run = runtime.run_pipeline(
            options, test_pipeline, lambda p: build(p, config, progress), NAMESPACE)
    if dry_run:
        return dry_run
    c = runtime.counters(result, NAMESPACE)
    failed = sum(c.get(k, 0) for k in ("malformed", "corrupt", "decode_failed"))
    outputs, stale = outputs_of_run(config.output_path, config.output_format,
                                    c.get("output_files", 0))
    folder, name = os.path.split(config.output_path)
    files.remove_stale_temporaries(folder or ".", name)
    summary = {"counters": c, "examples_read": c.get("examples_read", 0),
               "outputs": outputs, "stale_outputs": stale,
               "predicted": c.get("predicted", 0), "failed": failed,
               "saturated": c.get("saturated", 0),
               "accounted": c.get("examples_read", 0) == c.get("predicted", 0) + failed,
               "input_data_path": config.input_data_path,
               "exported_model_dir": config.exported_model_dir,
               "output_path": config.output_path, "output_format": config.output_format,
               "batch_size": config.batch_size, "project_version": runtime.project_version(),
               "elapsed_seconds": clock.seconds()}
    files.write_json_atomically(f"{config.output_path}-summary.json", summary)
    return summary


def summary_lines(summary: Dict[str, object], output_path: str):
    """What a finished full run prints.

    Args:
        summary: ``run_predictions``'s summary.
        output_path: the run's ``--output_path`` (its failures file is named).

    Returns:
        ``(stdout lines, stderr lines)``.
    """
    outputs: List[str] = summary["outputs"]
    stale: List[str] = summary["stale_outputs"]
    shown = outputs if len(outputs) <= 4 else [outputs[0], "...", outputs[-1]]
    out = [f"Examples read: {summary['examples_read']}, predicted: {summary['predicted']}, "
           f"failed: {summary['failed']}; {summary['elapsed_seconds']:.1f} s. "
           f"Outputs ({len(outputs)} files): {', '.join(shown)}"]
    err = []
    if stale:
        err.append(f"NOTE: {len(stale)} files of {output_path} are from an earlier run, not "
                   f"this one (a glob over the prefix reads them too; listed as stale_outputs "
                   f"in {output_path}-summary.json): {', '.join(stale[:4])}"
                   f"{' ...' if len(stale) > 4 else ''}")
    line = model_interface.saturation_line("run_inference", summary["saturated"],
                                           summary["predicted"], "examples")
    if line:
        err.append(line)
    if not summary["examples_read"] and not summary["failed"]:
        err.append("run_inference: error: the input shards hold no example: nothing was "
                   "predicted (an empty shard, such as a cut that cut nothing?)")
    if summary["examples_read"] and not summary["predicted"]:
        err.append(f"run_inference: error: no example could be predicted; the reasons are in "
                   f"{output_path}-failures.jsonl")
    return out, err


def exit_code(result: Dict[str, object]) -> int:
    """The run's exit status.

    Args:
        result: ``run_predictions``'s summary or ``run_samples``' result.

    Returns:
        0, or 1 when a shard could not be read to its end, the input holds
        no example, nothing could be predicted, every prediction is on the
        model's clip bounds (``saturated``), the counts do not add up, or
        sample mode met a corrupt shard.
    """
    if "samples" in result:
        return 1 if result["error"] or result.get("all_saturated") else 0
    if result.get("dry_run"):
        return 0
    ok = (result["accounted"] and not result["counters"].get("shards_incomplete")
          and result["predicted"]
          and not model_interface.all_saturated(result["saturated"], result["predicted"]))
    return 0 if ok else 1

