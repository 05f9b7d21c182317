"""Generated sample data for the demo, the tests and the benchmarks (never
used by the pipelines themselves).

``generate.generate`` writes shards in the release's format (``examples``),
an ISMN download in the real layout (``stations``, ``ismn_files``) and each
example's expected merge outcome (``ground_truth.jsonl``).
``scene.make_scene`` writes a co-registered scene for maps, in the dataset's
encoding; ``native.make_native_scene`` one as a user downloads it (each band
on its product's grid and in its units), with its encoding file and a STAC
ItemCollection. ``series.make_series`` writes scenes through time with ISMN
stations inside them whose readings follow the examples' label rule.
"""

from transforms.synthetic.examples import draw_inputs, label_from_inputs
from transforms.synthetic.generate import CATEGORIES, SampleConfig, SamplePaths, generate
from transforms.synthetic.native import NativeConfig, make_native_scene
from transforms.synthetic.series import SeriesConfig, SeriesPaths, make_series
from transforms.synthetic.stations import STATIONS

__all__ = ["CATEGORIES", "STATIONS", "NativeConfig", "SampleConfig", "SamplePaths", "draw_inputs",
           "generate", "label_from_inputs", "make_native_scene", "make_series",
           "SeriesConfig", "SeriesPaths"]
