"""A look at a scene's encoded values before a map: each encoded band
sampled on a lattice of the map's grid, so an encoding that flattens a band
(most pixels clipped to ``min`` or ``max``: a wrong scale, linear power
read as dB; or, for an image band, one value everywhere: SMAP and GLDAS
may rightly be one pixel over a small scene) is said in one line instead of
passing into the map unseen.
"""

from __future__ import annotations

from typing import List

import numpy as np

from transforms.mapping.scene.reader import Scene
from transforms.mapping.scene.sources import values_at

#: the lattice sampled: this many points a side of the map's grid
SAMPLES_A_SIDE = 48
#: a band is said to be flattened when more of its sampled values than this share one
#: clip bound, or when they are all one value
FLAT_SHARE = 0.5


def encoding_notes(scene: Scene) -> List[str]:
    """``WARNING`` lines for the encoded bands that the encoding flattens.

    Args:
        scene: the scene (``reader.read_scene``), with its encodings.

    Returns:
        One line a flattened band, naming it, the share clipped (or the one
        value) and its encoding; empty when none is.

    Raises:
        SceneError: a file that cannot be read at the sampled points.
    """
    grid = scene.grid
    rows, cols = np.meshgrid(np.linspace(0, grid.height, SAMPLES_A_SIDE + 2)[1:-1],
                             np.linspace(0, grid.width, SAMPLES_A_SIDE + 2)[1:-1],
                             indexing="ij")
    notes = []
    for name, band in {**scene.bands, **scene.aux}.items():
        enc = band.encoding
        if enc is None:
            continue
        found = values_at(band, grid, rows, cols)
        held = found.values[~found.missing]
        if held.size < 2:
            continue
        encoded = enc.apply(held)
        at_bound = max(np.mean(encoded == enc.min), np.mean(encoded == enc.max))
        what = ""
        if name in scene.bands and np.all(encoded == encoded[0]):  # SMAP: one pixel may be all
            what = f"encodes to {int(encoded[0])} at every one of {encoded.size} sampled pixels"
        elif at_bound > FLAT_SHARE:
            bound = "min" if np.mean(encoded == enc.min) >= at_bound else "max"
            what = (f"encodes {100 * at_bound:.0f}% of {encoded.size} sampled pixels to its "
                    f"{bound} {getattr(enc, bound)}")
        if what:
            notes.append(f"WARNING: band {name} {what} (scale {enc.scale:g}, offset "
                         f"{enc.offset:g}, raw values {held.min():g}..{held.max():g}): is the "
                         f"encoding meant for these units?")
    return notes
