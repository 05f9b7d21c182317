"""synthetic"""

from transforms.synthetic.generate import (  # noqa: F401
    CATEGORIES,
    STATIONS,
    SampleConfig,
    SamplePaths,
    _draw_inputs,
    generate,
    label_from_inputs,
)
