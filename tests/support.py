"""Helpers the test modules share (plain functions, no fixtures)."""

import json
import os


def varint(value: int) -> bytes:
    """``value`` as a protobuf varint (negative values as their 64-bit two's
    complement: ten bytes), written out from the wire-format rules."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def fresh_python(code: str):
    """Run ``code`` in a new Python process in the repository: ``(stdout words,
    the end of stderr)`` (for what must be seen from a clean start: imports,
    the collector)."""
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
    return out.stdout.split(), out.stderr[-3000:]


def read_truth(paths):
    """The generator's ground truth: one dict per example."""
    with open(paths.ground_truth) as f:
        return [json.loads(line) for line in f]


def read_failures(out):
    """The merge's failures.jsonl in ``out``."""
    with open(os.path.join(out, "failures.jsonl")) as f:
        return [json.loads(line) for line in f]


def export_model(folder, seed: int, frozen: bool) -> str:
    """A reference model of its own for a test (SavedModel dir, frozen_graph.pb inside
    with ``frozen``)."""
    from model_runner import export_reference_model

    out = os.path.join(str(folder), "reference")
    export_reference_model.export(out, seed=seed, frozen=frozen)
    return out


def numpy_metrics(p, y):
    """bias, RMSE, ubRMSE and r of predictions ``p`` against labels ``y``, by numpy."""
    import numpy as np

    p, y = np.asarray(p, float), np.asarray(y, float)
    d = p - y
    bias = d.mean()
    rmse = np.sqrt((d ** 2).mean())
    ubrmse = np.sqrt(((d - bias) ** 2).mean())
    r = None if len(p) < 2 or p.std() == 0 or y.std() == 0 else np.corrcoef(p, y)[0, 1]
    return {"n": len(p), "bias": bias, "rmse": rmse, "ubrmse": ubrmse, "r": r}


def assert_metrics_equal(got, expected):
    import pytest

    assert got["n"] == expected["n"]
    for k in ("bias", "rmse", "ubrmse", "r"):
        if expected[k] is None:
            assert got[k] is None, k
        else:
            assert got[k] == pytest.approx(expected[k], abs=1e-9), k


DAY = 86400e3


def pytesmo_cis(p, y, ci_level=0.95):
    """pytesmo's analytical intervals of bias, ubRMSD and Pearson r (x = prediction)."""
    import numpy as np
    from pytesmo.metrics import bias, pearson_r, ubrmsd, with_analytical_ci

    p, y = np.asarray(p, float), np.asarray(y, float)
    out = {}
    for name, fn in (("bias", bias), ("ubrmse", ubrmsd), ("r", pearson_r)):
        with np.errstate(divide="ignore"):  # r at n = 3: z / sqrt(0), an interval of [-1, 1]
            _, lower, upper = with_analytical_ci(fn, p, y, alpha=1 - ci_level)
        out[f"{name}_ci_lower"], out[f"{name}_ci_upper"] = float(lower), float(upper)
    return out


def irregular_times(rng, n, start=1.5e12):
    """Sorted Unix-millisecond times with sub-second parts, gaps of hours to
    weeks, and points exactly 17.5 days (half a 35-day window) apart."""
    import numpy as np

    t = start + np.cumsum(rng.choice([3.6e6, 86400e3, 5 * 86400e3, 12.5 * 86400e3], n))
    t = t + rng.integers(0, 999, n)  # milliseconds pytesmo's Julian dates drop
    t[5] = t[3] + 17.5 * DAY
    t[6] = t[5] + 17.5 * DAY + 1000.0  # one second past the half window
    return np.sort(t)
