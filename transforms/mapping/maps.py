"""``predict_map`` as one call, whatever it writes: one scene's map
(``job.run_map``), or several scenes' cube or folder of maps
(``cube_job.run_series``)."""

from __future__ import annotations

from typing import Dict

from transforms.mapping.config import MapConfig
from transforms.mapping.cube_job import run_series
from transforms.mapping.job import run_map
from transforms.mapping.pipeline import return_freed_regions


def run_maps(config: MapConfig, options, test_pipeline=None) -> Dict[str, object]:
    """Map ``config``'s scene(s) as ``config.output_kind`` says.

    Args:
        config: the settings.
        options: the Beam ``PipelineOptions``.
        test_pipeline: a ``TestPipeline`` to run on instead (tests).

    Returns:
        ``run_map``'s summary for a ``.tif``, else ``run_series``' (its
        ``kind`` is ``cube`` or ``maps``); or a dry run's report.
    """
    return_freed_regions()  # before the first large block is freed (a local run's workers)
    run = run_map if config.output_kind == "map" else run_series
    return run(config, options, test_pipeline)
