"""A band's encoding: how a raster's own values (dB, reflectance, metres,
m³/m³, kg/m²) become the dataset's integers (README: "The encoding file").

``--encoding FILE.json`` maps band names to ``{"scale": a, "offset": b,
"min": lo, "max": hi}``; a value ``v`` of the band (after resampling onto
the map's grid; for ``smap_sm`` and ``gldas_sm``, the value looked up at a
window's centre) becomes ``clip(floor(v * a + b + 0.5), lo, hi)``, in
float64. NaN and infinite values are nodata, never encoded. ``"r"``,
``"residual"`` and ``"pixels"``, which ``cut_examples --fit_encoding``
writes beside the four (the fit's statistics), are accepted and ignored;
any other key is refused (a misspelled ``"ofset"`` would silently be 0).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Dict

import numpy as np

from transforms.mapping.scene.bands import ALL_BANDS
from transforms.mapping.scene.files import read_flag_file, strict_json
from transforms.runtime.errors import UsageError

KEYS = ("scale", "offset", "min", "max")
#: a fitted encoding's statistics (``mapping.fit``): accepted, ignored
FIT_KEYS = ("r", "residual", "pixels")


@dataclasses.dataclass(frozen=True)
class Encoding:
    """``clip(floor(value * scale + offset + 0.5), min, max)``.

    Attributes:
        scale: multiplies the raster's value (finite, not 0).
        offset: added after scaling (finite).
        min, max: the dataset integers' range (integers, ``min <= max``).
    """

    scale: float
    offset: float
    min: int
    max: int

    def apply(self, values: np.ndarray) -> np.ndarray:
        """The dataset integers of ``values`` (finite), as ``dtype``."""
        encoded = np.floor(np.asarray(values, np.float64) * self.scale + self.offset + 0.5)
        return np.clip(encoded, self.min, self.max).astype(self.dtype)

    @property
    def dtype(self) -> np.dtype:
        """The smallest of int16, int32, int64 holding ``[min, max]``."""
        for dtype in (np.int16, np.int32):
            info = np.iinfo(dtype)
            if info.min <= self.min and self.max <= info.max:
                return np.dtype(dtype)
        return np.dtype(np.int64)

    def as_dict(self) -> Dict[str, float]:
        """The four numbers as the file gives them."""
        return dataclasses.asdict(self)


#: the largest magnitude of an encoding's min/max: integers float64 holds exactly
LARGEST = 2 ** 53


def _number(path: str, band: str, key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"--encoding {path}: {band}.{key} is {json.dumps(value)}, not a number")
    try:
        value = float(value)
    except OverflowError:
        raise UsageError(f"--encoding {path}: {band}.{key} is too large a number") from None
    if not math.isfinite(value):
        raise UsageError(f"--encoding {path}: {band}.{key} is {value}, not a finite number")
    return float(value)


def parse_encoding(path: str, text: str) -> Dict[str, Encoding]:
    """The encodings a file's JSON ``text`` gives, by band.

    Args:
        path: the file, for the errors.
        text: its content.

    Returns:
        ``{band: Encoding}``.

    Raises:
        UsageError: naming the file and the band: not JSON, not an object of
            objects, an unknown band, a key missing or unknown (``FIT_KEYS``
            are known, and ignored), a value that
            is not a finite number, a scale of 0, a ``min``/``max`` that is
            not an integer, ``min > max``.
    """
    content = strict_json("--encoding", path, text)
    if not isinstance(content, dict) or not content:
        raise UsageError(f"--encoding {path} must hold an object of bands, e.g. "
                         f'{{"sentinel_1_VV": {{"scale": 100, "offset": 0, "min": -32768, '
                         f'"max": 32767}}}}')
    found = {}
    for band, entry in content.items():
        if band not in ALL_BANDS:
            raise UsageError(f"--encoding {path}: {band!r} is no band of the model (the bands: "
                             f"{', '.join(ALL_BANDS)})")
        if not isinstance(entry, dict):
            raise UsageError(f"--encoding {path}: {band} must be an object with "
                             f"{', '.join(KEYS)}")
        unknown = sorted(set(entry) - set(KEYS) - set(FIT_KEYS))
        missing = [k for k in KEYS if k not in entry]
        if unknown or missing:
            what = "; ".join(([f"unknown {', '.join(unknown)}"] if unknown else [])
                             + ([f"missing {', '.join(missing)}"] if missing else []))
            raise UsageError(f"--encoding {path}: {band}: {what} (the keys are "
                             f"{', '.join(KEYS)}; a fit's {', '.join(FIT_KEYS)} are ignored)")
        scale, offset, low, high = (_number(path, band, k, entry[k]) for k in KEYS)
        if scale == 0:
            raise UsageError(f"--encoding {path}: {band}.scale is 0: every value would encode "
                             f"alike")
        for key, value in (("min", low), ("max", high)):
            if value != int(value):
                raise UsageError(f"--encoding {path}: {band}.{key} is {value:g}: the dataset's "
                                 f"values are integers")
            if abs(value) > LARGEST:
                raise UsageError(f"--encoding {path}: {band}.{key} is {value:g}: beyond "
                                 f"±2^53, the integers a float64 holds exactly")
        if low > high:
            raise UsageError(f"--encoding {path}: {band}: min {low:g} is above max {high:g}")
        found[band] = Encoding(scale, offset, int(low), int(high))
    return found


def read_encoding(path: str) -> Dict[str, Encoding]:
    """``parse_encoding`` of the file ``path`` (local or ``gs://``).

    Raises:
        UsageError: the file cannot be read, or see ``parse_encoding``.
    """
    return parse_encoding(path, read_flag_file("--encoding", path))
