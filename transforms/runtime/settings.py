"""One frozen settings object per flow, built from the command's flags.

Each flow's settings dataclass (``transforms.merge.MergeConfig``,
``transforms.inference.InferenceConfig``, ...) names its fields after the
command's flags, so ``--time_tolerance_minutes`` is
``config.time_tolerance_minutes`` everywhere. ``values_for`` reads those
fields from Beam's parsed options (every ``PipelineOptions`` class the
command defines, and Beam's own), whatever options class defines each flag.
"""

from __future__ import annotations

import dataclasses
from typing import Dict

from apache_beam.options.pipeline_options import PipelineOptions


def values_for(cls, options: PipelineOptions, **derived) -> Dict[str, object]:
    """The values of ``cls``'s fields (a dataclass) from ``options``, by flag
    name, with ``derived`` (settings worked out from several flags) replacing
    or adding to them.

    Raises KeyError naming a field that no parsed flag (nor ``derived``) holds:
    a settings class and the command's flags have drifted apart.
    """
    flags = options.get_all_options()
    values: Dict[str, object] = {}
    for field in dataclasses.fields(cls):
        if field.name in derived:
            values[field.name] = derived[field.name]
        elif field.name in flags:
            values[field.name] = flags[field.name]
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise KeyError(f"{cls.__name__}.{field.name} is no flag of this command")
    return values
