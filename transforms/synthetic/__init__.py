"""Generated sample data for the demo, the tests and the benchmarks (never
used by the pipelines themselves).

``generate.generate`` writes shards in the release's format (``examples``),
an ISMN download in the real layout (``stations``, ``ismn_files``) and each
example's expected merge outcome (``ground_truth.jsonl``).
"""

from transforms.synthetic.examples import draw_inputs, label_from_inputs
from transforms.synthetic.generate import CATEGORIES, SampleConfig, SamplePaths, generate
from transforms.synthetic.stations import STATIONS

__all__ = ["CATEGORIES", "STATIONS", "SampleConfig", "SamplePaths", "draw_inputs", "generate",
           "label_from_inputs"]
