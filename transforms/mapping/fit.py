"""A scene against the release (``cut_examples --compare_with``): the
comparison's table and ``compare.json``, and with ``--fit_encoding`` each
band's encoding fitted from the scene's own values (README: "Fit an
encoding against the release").

The fit: the scene is read raw (every band's own values, floats accepted,
no encoding applied). For each of the 14 image bands, each pixel of every
released example whose window lies in the scene (``ReleasedWindows``)
pairs the scene's value ``x`` with the example's integer ``y``; for
``smap_sm`` and ``gldas_sm``, the scene's value at the example's centre
(the pixel holding it, as the map looks it up) with the example's own
``smap_sm``/``gldas_sm``. ``y = scale * x + offset`` is fitted by least
squares, leaving out saturated pairs: for an image band those whose ``y``
is the lowest or the highest value the band holds over all compared
pixels (the released range seen, written as the band's ``min``/``max``);
for ``smap_sm``/``gldas_sm`` those whose ``y`` is 0 or 255 or beyond (the
range the release's decoder fixes, written as ``min``/``max``: one value
an example, so the few seen are not the range). Streamed: per band and
released integer, the pixels, the sum of ``x`` and of ``x²`` (``ValueSums``).
"""

from __future__ import annotations

import math
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from transforms.dataset import example_proto, files
from transforms.mapping.examples import ReleasedWindows, compare_with_examples
from transforms.mapping.scene import (ALL_BANDS, AUX_BANDS, AUX_RANGE, IMAGE_BANDS, Scene,
                                      values_at)
from transforms.mapping.scene.encoding import FIT_KEYS, KEYS
from transforms.runtime import InputError, UsageError, check_writable, plural

__all__ = ["DEFAULT_MIN_R", "ValueSums", "check_fit_flags", "fit_band", "fit_encoding",
           "parse_acquired", "poor_fits", "write_comparison", "write_fit"]

#: ``--fit_min_r``'s default: a band whose fit's |r| is below is refused. An
#: affine encoding rounded to integers keeps r above 0.99 for any band whose
#: released values have a standard deviation of 2 integers or more (the
#: rounding's 0.29 RMS is then at most 14% of it); a scene of another date,
#: or in units that are no affine map of the release's (linear power against
#: dB), falls well below.
DEFAULT_MIN_R = 0.99


class ValueSums:
    """The pairs ``(released integer y, scene value x)`` of one band, summed
    per ``y``: pixels, ``Σ(x - shift)``, ``Σ(x - shift)²`` (``shift``: the
    first ``x`` seen, so the sums lose no precision to a large mean). Any
    set of released values can then be left out after the pass.

    Attributes:
        keys: the released values seen, ascending (float64, integers).
        sums: one row per key: pixels, ``Σ(x - shift)``, ``Σ(x - shift)²``.
        shift: the first ``x`` seen (None before).
    """

    def __init__(self) -> None:
        self.keys = np.empty(0)
        self.sums = np.empty((0, 3))
        self.shift: Optional[float] = None

    def add(self, released, raw) -> None:
        """Count pairs in: ``released`` integers and the scene's ``raw``
        values at the same pixels (arrays of one size, finite)."""
        y = np.asarray(released, np.float64).ravel()
        x = np.asarray(raw, np.float64).ravel()
        if not y.size:
            return
        if self.shift is None:
            self.shift = float(x[0])
        low = y.min()
        if y.max() - low <= 4 * y.size + 65536:  # integers in a short span: counted directly
            inverse = (y - low).astype(np.int64)
            keys = low + np.arange(int(inverse.max()) + 1)
        else:
            keys, inverse = np.unique(y, return_inverse=True)
        x = x - self.shift
        part = np.stack([np.bincount(inverse, minlength=keys.size).astype(np.float64),
                         np.bincount(inverse, x, keys.size),
                         np.bincount(inverse, x * x, keys.size)], axis=1)
        held = part[:, 0] > 0
        keys, part = keys[held], part[held]
        merged = np.union1d(self.keys, keys)
        sums = np.zeros((merged.size, 3))
        sums[np.searchsorted(merged, self.keys)] += self.sums
        sums[np.searchsorted(merged, keys)] += part
        self.keys, self.sums = merged, sums

    def seen(self) -> Tuple[Optional[int], Optional[int]]:
        """The lowest and highest released value seen (None, None: none)."""
        if not self.keys.size:
            return None, None
        return int(self.keys[0]), int(self.keys[-1])


def fit_band(sums: ValueSums, low: Optional[int], high: Optional[int]) -> Dict[str, object]:
    """The least-squares ``y = scale * x + offset`` of one band's pairs
    whose released ``y`` lies strictly between ``low`` and ``high``.

    Args:
        sums: the band's pairs.
        low, high: the released range; pairs at (or beyond) its ends are
            saturated, left out.

    Returns:
        ``{"scale", "offset", "min": low, "max": high, "r", "residual"
        (RMS of y - fit, in dataset integers), "pixels" (pairs used),
        "saturated" (pairs left out)}``; scale, offset, r and residual
        None when fewer than 2 pairs are left or either side is constant.
    """
    keep = np.zeros(0, bool) if low is None else (sums.keys > low) & (sums.keys < high)
    count, sx_v, sxx_v = sums.sums[keep].T
    n = float(count.sum())
    fit = {"scale": None, "offset": None, "min": low, "max": high, "r": None,
           "residual": None, "pixels": int(n), "saturated": int(sums.sums[:, 0].sum() - n)}
    if n < 2:
        return fit
    d = sums.keys[keep] - low  # exact: integers
    sx, sxx = sx_v.sum(), sxx_v.sum()
    sy, syy, sxy = (count * d).sum(), (count * d * d).sum(), (d * sx_v).sum()
    cxx, cyy, cxy = sxx - sx * sx / n, syy - sy * sy / n, sxy - sx * sy / n
    if cxx <= 1e-14 * sxx or cyy <= 1e-14 * syy:  # constant (rounding aside)
        return fit
    scale = cxy / cxx
    fit.update(scale=float(scale), offset=float(low + sy / n - scale * (sums.shift + sx / n)),
               r=min(1.0, max(-1.0, float(cxy / math.sqrt(cxx * cyy)))),
               residual=float(math.sqrt(max(cyy - scale * cxy, 0.0) / n)))
    return fit


def fit_encoding(scene: Scene, pattern: str,
                 acquired: Optional[Tuple[str, str]] = None) -> Dict[str, object]:
    """Fit each band's encoding (the module's rules) against the released
    examples of ``pattern`` that lie in ``scene``.

    Args:
        scene: the scene, read raw (``SceneSettings.open_scene(raw=True)``).
        pattern: a glob of gzipped TFRecord shards.
        acquired: only the examples of these (Sentinel-1, Sentinel-2) days
            (``ReleasedWindows.acquired``), or None.

    Returns:
        ``ReleasedWindows.summary`` with ``"bands": {band: fit_band's}``
        for the 16 bands.

    Raises:
        UsageError, InputError, SceneError: as ``ReleasedWindows``.
    """
    sums = {name: ValueSums() for name in ALL_BANDS}
    windows = ReleasedWindows(scene, pattern, acquired)
    for found in windows:
        for name in IMAGE_BANDS:
            sums[name].add(found.released[name], found.cut[name])
        held = example_proto.read_features(found.record, AUX_BANDS)
        for name in AUX_BANDS:
            at = values_at(scene.aux[name], scene.grid, np.array([float(found.row)]),
                           np.array([float(found.col)]))
            if held.get(name) and not at.missing[0]:
                sums[name].add(held[name][:1], at.values)
    result = windows.summary()
    return {**result, "bands": {name: fit_band(sums[name], *(
        AUX_RANGE if name in AUX_BANDS else sums[name].seen())) for name in ALL_BANDS}}


def poor_fits(bands: Dict[str, Dict], min_r: float) -> List[str]:
    """``sentinel_1_VV r 0.4132`` for each band whose fit's |r| is below
    ``min_r`` or undefined (with why: constant, or no pair left)."""
    poor = []
    for name, fit in bands.items():
        if fit["r"] is None:
            why = "under 2 pairs inside its range's ends" if fit["pixels"] < 2 else "constant"
            poor.append(f"{name} r – ({why})")
        elif abs(fit["r"]) < min_r:
            poor.append(f"{name} r {fit['r']:.4f}")
    return poor


def check_fit_flags(fit_encoding: Optional[str], fit_min_r: Optional[float],
                    compare_with: Optional[str], encoding: Optional[str],
                    inputs: Tuple[Tuple[str, Optional[str]], ...] = ()) -> None:
    """``--fit_encoding`` and ``--fit_min_r`` with the other flags; nothing
    is written.

    Args:
        fit_encoding, fit_min_r, compare_with, encoding: the flags' values.
        inputs: ``(flag, path)`` of the other files the command reads (a
            STAC ``--scene_path``, ``--band_map``): never overwritten.

    Raises:
        UsageError: naming the flag: ``--fit_encoding`` without
            ``--compare_with`` or with ``--encoding``, not a ``.json``, a
            folder, in a local folder that does not exist or cannot be
            written, one of ``inputs``; ``--fit_min_r`` without
            ``--fit_encoding``, or not between 0 and 1.
    """
    if fit_encoding is None:
        if fit_min_r is not None:
            raise UsageError("--fit_min_r is --fit_encoding's threshold: give --fit_encoding")
        return
    if not compare_with:
        raise UsageError("--fit_encoding fits the scene against released examples: give "
                         "--compare_with")
    if encoding:
        raise UsageError("--fit_encoding fits the scene's own values (no encoding applied): "
                         "leave out --encoding")
    if fit_min_r is not None and not 0 <= fit_min_r <= 1:
        raise UsageError(f"--fit_min_r is a correlation between 0 and 1, not {fit_min_r}")
    if "://" not in fit_encoding and os.path.isdir(fit_encoding):
        raise UsageError(f"--fit_encoding {fit_encoding} is a folder: name the file to "
                         f"write (e.g. encoding.json)")
    if not fit_encoding.lower().endswith(".json"):  # never a scene's raster or a shard
        raise UsageError(f"--fit_encoding {fit_encoding}: name the JSON file to write "
                         f"(e.g. encoding.json)")
    if "://" not in fit_encoding:
        if not os.path.isdir(os.path.dirname(fit_encoding) or "."):
            raise UsageError(f"--fit_encoding {fit_encoding}: its folder does not exist")
        check_writable(os.path.dirname(fit_encoding) or ".", "--fit_encoding")
    for flag, path in inputs:
        if path and "://" not in path and os.path.exists(path) and os.path.exists(
                fit_encoding) and os.path.samefile(path, fit_encoding):
            raise UsageError(f"--fit_encoding {fit_encoding} is {flag}'s file: the fit would "
                             f"overwrite it")


def acquisitions_line(found: Dict[str, object]) -> str:
    """``examples inside the scene by (Sentinel-1 day, Sentinel-2 day):
    2021-06-01/2021-06-03 12, 2021-06-13/2021-06-03 4; compare one with
    --acquired S1DAY,S2DAY`` (empty when one pair or none).

    Args:
        found: ``ReleasedWindows.summary``'s result.

    Returns:
        The line.
    """
    pairs = found.get("acquisitions") or []
    if len(pairs) < 2:
        return ""
    listed = ", ".join(f"{p['sentinel_1_day'] or 'undated'}/{p['sentinel_2_day'] or 'undated'} "
                       f"{p['examples']}" for p in pairs)
    hint = ("" if found.get("acquired") else
            "; the scene holds one acquisition: compare with its examples alone, "
            "--acquired S1DAY,S2DAY")
    return f"examples inside the scene by (Sentinel-1 day, Sentinel-2 day): {listed}{hint}"


def parse_acquired(text: Optional[str],
                   compare_with: Optional[str]) -> Optional[Tuple[str, str]]:
    """``--acquired 2021-06-01,2021-06-03`` as two days (None when not given).

    Args:
        text: the flag's value, or None.
        compare_with: ``--compare_with``'s (the flag filters its examples).

    Returns:
        ``(Sentinel-1 day, Sentinel-2 day)``, each ``YYYY-MM-DD``.

    Raises:
        UsageError: given without ``--compare_with``, or not two dates.
    """
    import datetime

    if text is None:
        return None
    if not compare_with:
        raise UsageError("--acquired picks the examples --compare_with compares: give both")
    days = text.split(",")
    try:
        if len(days) != 2:
            raise ValueError
        return tuple(datetime.date.fromisoformat(d.strip()).isoformat() for d in days)
    except ValueError:
        raise UsageError(f"--acquired {text!r}: give the Sentinel-1 and Sentinel-2 days as "
                         f"YYYY-MM-DD,YYYY-MM-DD") from None


def _table_head(found: Dict[str, object], columns: str) -> List[str]:
    """The printed table's first lines: the counts, the acquisitions, the header."""
    causes = ", ".join(f"{n} {c.replace('_', ' ')}" for c, n in found["skipped_by_cause"].items()
                       if n) or "none"
    days = acquisitions_line(found)
    return [f"{plural(found['examples'], 'example')} compared (skipped: {causes})",
            *([days] if days else []), "",
            f"| band | {columns} |", "| --- |" + " ---: |" * (columns.count("|") + 1)]


def _number(value: Optional[float], form: str) -> str:
    return "–" if value is None else format(value, form)


def write_comparison(scene: Scene, pattern: str, output_dir: str,
                     acquired: Optional[Tuple[str, str]] = None) -> Dict[str, object]:
    """``--compare_with``: ``compare_with_examples`` (of the examples of the
    ``acquired`` days, if given), its table printed, ``compare.json``
    written (an earlier one removed when it fails)."""
    try:
        found = compare_with_examples(scene, pattern, acquired)
    except Exception:  # nothing compared: no earlier compare.json left to pass for it
        files.remove_outputs([os.path.join(output_dir, "compare.json")])
        raise
    lines = _table_head(found, "mean abs. difference | r")
    lines += [f"| {band} | {m['mean_abs_diff']:.3f} | {_number(m['r'], '.4f')} |"
              for band, m in found["bands"].items()]
    print("\n".join(lines))
    files.write_json_atomically(os.path.join(output_dir, "compare.json"), found)
    return found


def write_fit(scene: Scene, pattern: str, output_dir: str, path: str,
              min_r: Optional[float] = None,
              acquired: Optional[Tuple[str, str]] = None) -> Dict[str, object]:
    """``--fit_encoding``: ``fit_encoding``'s table printed, ``compare.json``
    written, then the encoding file ``path`` (``--encoding``'s format, each
    band's ``r``, ``residual`` and ``pixels`` beside) unless a fit is poor.

    Args:
        scene: the scene, read raw.
        pattern: a glob of released shards.
        output_dir: where ``compare.json`` goes.
        path: the encoding file to write.
        min_r: the lowest |r| of a band's fit (None: ``DEFAULT_MIN_R``).
        acquired: only the examples of these (Sentinel-1, Sentinel-2) days.

    Returns:
        ``fit_encoding``'s result, with ``fit_min_r`` and ``poor``.

    Raises:
        InputError: a band's fit is poor (one line naming each, with its r
            and the likely reasons): ``compare.json`` holds every band's
            fit, ``path`` is not written; or as ``fit_encoding``. An earlier
            ``path`` is removed whenever none is written.
    """
    min_r = DEFAULT_MIN_R if min_r is None else min_r
    try:
        found = fit_encoding(scene, pattern, acquired)
    except Exception:  # no earlier output left to pass for this run's
        files.remove_outputs([os.path.join(output_dir, "compare.json"), path])
        raise
    poor = poor_fits(found["bands"], min_r)
    found.update(fit_min_r=min_r, poor=poor)
    lines = _table_head(found, "scale | offset | r | residual | pixels")
    lines += [f"| {band} | {_number(m['scale'], '.6g')} | {_number(m['offset'], '.6g')} | "
              f"{_number(m['r'], '.4f')} | {_number(m['residual'], '.3f')} | {m['pixels']} |"
              for band, m in found["bands"].items()]
    print("\n".join(lines))
    files.write_json_atomically(os.path.join(output_dir, "compare.json"), found)
    if poor:
        files.remove_outputs([path])
        raise InputError(
            f"the fit is poor for {plural(len(poor), 'band')} (|r| below {min_r:g}): "
            f"{', '.join(poor)}: the scene's values are likely no affine map of the release's "
            f"(e.g. linear power against dB), or its acquisitions differ from the examples' "
            f"(their sentinel_1_timestamp, sentinel_2_timestamp), or the band is missing or "
            f"constant where they lie; {path} not written (compare.json holds every band's fit)")
    files.write_json_atomically(path, {band: {k: m[k] for k in (*KEYS, *FIT_KEYS)}
                                       for band, m in found["bands"].items()})
    print(f"\nwrote the fitted encoding {path}: map with predict_map --encoding {path}")
    return found
