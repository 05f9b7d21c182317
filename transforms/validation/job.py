"""A map's validation as one call: check the inputs, run the pipeline, read
back its counts.

``run_validation`` is what ``pipelines.validate_map`` calls with its
``ValidationConfig``, before it runs evaluate's report on the pairs.
"""

from __future__ import annotations

from typing import Dict, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms import runtime
from transforms.dataset import files
from transforms.validation import maps
from transforms.validation.config import PAIRS_FILE, STATIONS_FILE, SUMMARY_FILE, ValidationConfig
from transforms.validation.pipeline import NAMESPACE, ValidateMap


def build(p: beam.Pipeline, config: ValidationConfig):
    """Add the validation to ``p``: ``pairs.csv``, ``stations.csv`` and
    ``validation.json`` in ``config.output_dir``.

    Args:
        p: the pipeline.
        config: the validation's settings.

    Returns:
        The PCollection of ``validation.json``'s content (one element).
    """
    return p | "Validate map" >> ValidateMap(config)



def check_inputs(config: ValidationConfig) -> maps.MapGrid:
    """Before anything runs: the map, the ISMN download and the output folder.

    Args:
        config: the validation's settings.

    Returns:
        The map's grid.

    Raises:
        UsageError: see ``maps.open_map``; the ISMN download does not exist;
            the output folder lies inside the map or the download, or
            cannot be written.
        InputError: see ``maps.open_map``.
    """
    grid = maps.open_map(config.map, config.time)
    if not FileSystems.exists(config.ismn_data_path.rstrip("/")):
        raise runtime.UsageError(f"--ismn_data_path {config.ismn_data_path} does not exist")
    for flag, folder in (("--map", config.map), ("--ismn_data_path", config.ismn_data_path)):
        if runtime.is_inside(config.output_dir, folder):
            raise runtime.UsageError(f"--output_dir {config.output_dir} is inside {flag} "
                                     f"{folder}: write the outputs elsewhere")
    runtime.check_writable(config.output_dir, "--output_dir")
    return grid


def run_validation(config: ValidationConfig, options, test_pipeline=None,
                   earlier: Sequence[str] = ()) -> Dict[str, object]:
    """Run the validation of ``config`` with Beam ``options``.

    Args:
        config: the validation's settings.
        options: the command's parsed ``PipelineOptions`` (runner, workers).
        test_pipeline: a ``TestPipeline`` to run on instead (tests).
        earlier: names (globs) of more files in ``output_dir`` an earlier
            run left, deleted with its ``pairs.csv``, ``stations.csv`` and
            ``validation.json`` once the inputs are checked (the report the
            entry point adds), so none can pass for this run's.

    Returns:
        ``validation.json``'s content (``report.summarise``), or a dry
        run's report (``dry_run``: True).

    Raises:
        UsageError, InputError: see ``check_inputs``.
        InputError: after writing ``validation.json``, when there is
            nothing to evaluate (its ``error``: a download that cannot be
            listed or without a 0.05 m soil-moisture sensor, no station on
            the map, no pair).
        RuntimeError: the outcomes do not add up (a bug).
    """
    if not runtime.is_dry_run(options):
        check_inputs(config)
        found = FileSystems.match([config.output(n) for n in earlier]) if earlier else []
        files.remove_outputs([config.output(n) for n in (PAIRS_FILE, STATIONS_FILE, SUMMARY_FILE)]
                             + sorted({m.path for f in found for m in f.metadata_list}))
    runtime.apply_local_defaults(options)
    _, dry_run = runtime.run_pipeline(options, test_pipeline, lambda p: build(p, config),
                                      NAMESPACE)
    if dry_run:
        return dry_run
    summary = files.read_json(config.output(SUMMARY_FILE))
    if not summary["accounted"]:
        raise RuntimeError(f"validate_map's outcomes do not add up to stations x times "
                           f"({config.output(SUMMARY_FILE)}): a bug")
    if not summary["usable"]:
        raise runtime.InputError(summary["error"])
    return summary
