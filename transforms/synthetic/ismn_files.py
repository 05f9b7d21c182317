"""The synthetic ISMN download: hourly series per sensor, rendered in the real
file naming and formats (CEOP or header+values), as a zip or a folder.
"""

import dataclasses
import os
import zipfile
from typing import List, Tuple

import numpy as np

from transforms.synthetic.stations import (STATIONS, SensorSpec, StationSpec, fmt_time,
                                           ismn_file_name)

TIME_TOLERANCE_S = 180  # the reference's +-3 minutes




@dataclasses.dataclass
class Series:
    """Readings of one ISMN sensor: seconds since epoch, values, flags."""

    times: np.ndarray  # int64 seconds, sorted
    values: np.ndarray  # float64, rounded to 4 decimals as written
    flags: List[str]

    def window(self, t: int, tolerance_s: int = TIME_TOLERANCE_S) -> np.ndarray:
        lo = np.searchsorted(self.times, t - tolerance_s, side="left")
        hi = np.searchsorted(self.times, t + tolerance_s, side="right")
        return np.arange(lo, hi)


def latent_series(rng, hours: int, base: float, variable: str) -> np.ndarray:
    """A plausible hourly series: seasonal cycle, rain pulses with decay, noise."""
    t = np.arange(hours)
    if variable == "ts":
        daily = 6 * np.sin(2 * np.pi * (t % 24) / 24)
        return 12 + 10 * np.sin(2 * np.pi * t / 8760) + daily + rng.normal(0, .3, hours)
    if variable == "p":
        return np.where(rng.random(hours) < .03, rng.gamma(1.5, 2.0, hours), 0.0)
    seasonal = base + 0.06 * np.sin(2 * np.pi * t / 8760 + rng.uniform(0, 6))
    rain = np.where(rng.random(hours) < 0.01, rng.uniform(0.02, 0.12, hours), 0.0)
    wet = np.zeros(hours)
    acc = 0.0
    decay = 0.985
    for i in range(hours):  # recursion: cheap enough for a few years of hours
        acc = acc * decay + rain[i]
        wet[i] = acc
    return np.clip(seasonal + wet + rng.normal(0, 0.003, hours), 0.02, 0.6)


def reading_flags(rng, n: int) -> List[str]:
    choice = rng.choice(["G", "D01", "D02", "D06", "C03", "U", "M"], size=n,
                        p=[.9, .02, .02, .02, .02, .01, .01])
    return [str(c) for c in choice]


def gap_hours(rng, hours: int) -> np.ndarray:
    """Boolean mask of hours with no reading: a few gaps of 12 h to 5 days."""
    missing = np.zeros(hours, dtype=bool)
    for _ in range(max(1, hours // 2000)):
        length = int(rng.integers(12, 120))
        start = int(rng.integers(24, max(25, hours - length - 24)))
        missing[start:start + length] = True
    return missing


def render_ismn_file(st: StationSpec, sensor: SensorSpec, series: Series, fmt: str) -> bytes:
    """The text of one ISMN data file, CRLF line ends."""
    lines = []
    head = (f"{st.network} {st.network} {st.name} {st.lat:.5f} {st.lon:.5f} {st.elevation:.2f} "
            f"{sensor.depth_from:.4f} {sensor.depth_to:.4f}")
    if fmt == "header_values":
        lines.append(f"{head} {sensor.instrument}")
    for t, v, flag in zip(series.times, series.values, series.flags):
        day, hm = fmt_time(int(t))
        if fmt == "ceop":
            lines.append(f"{day} {hm} {day} {hm} {head} {v:.4f} {flag} M")
        else:
            lines.append(f"{day} {hm} {v:.4f} {flag} M")
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def render_static_csv(st: StationSpec, rng) -> bytes:
    rows = ["quantity_name;unit;depth_from[m];depth_to[m];value;description;quantity_source_name;"
            "quantity_source_description;quantity_source_provider;quantity_source_version;"
            "quantity_source_reference;quantity_source_license;quantity_source_url"]
    clay, sand = rng.uniform(5, 40), rng.uniform(20, 70)
    for name, unit, d0, d1, val, src in (
            ("saturation", "m^3*m^-3", 0.0, 0.3, f"{rng.uniform(.35, .5):.2f}", "HWSD"),
            ("clay fraction", "% weight", 0.0, 0.3, f"{clay:.1f}", "HWSD"),
            ("sand fraction", "% weight", 0.0, 0.3, f"{sand:.1f}", "HWSD"),
            ("silt fraction", "% weight", 0.0, 0.3, f"{100 - clay - sand:.1f}", "HWSD"),
            ("organic carbon", "% weight", 0.0, 0.3, f"{rng.uniform(.2, 3):.2f}", "HWSD"),
            ("land cover classification", "", 0.0, 0.0, "10", "CCI_landcover_2000"),
            ("land cover classification", "", 0.0, 0.0, "10", "CCI_landcover_2005"),
            ("land cover classification", "", 0.0, 0.0, "11", "CCI_landcover_2010"),
            ("climate classification", "", 0.0, 0.0, "BSk", "koeppen_geiger_2007")):
        rows.append(f"{name};{unit};{d0};{d1};{val};;{src};;;;;;")
    return ("\r\n".join(rows) + "\r\n").encode()


def write_ismn(ismn_format: str, ismn_layout: str, series, rng, ismn_root: str) -> str:
    """Write the archive as ``ismn/ISMN_sample.zip`` or ``ismn/ISMN_sample/``."""
    files: List[Tuple[str, bytes]] = []
    for st in STATIONS:
        folder = f"{st.network}/{st.name}"
        for sensor in st.sensors:
            s = series[(st.network, st.name, sensor)]
            name = ismn_file_name(st, sensor, int(s.times[0]), int(s.times[-1]))
            files.append((f"{folder}/{name}", render_ismn_file(st, sensor, s, ismn_format)))
        if st.static_csv:
            files.append((f"{folder}/{st.network}_{st.network}_{st.name}_static_variables.csv",
                          render_static_csv(st, rng)))
    files.append(("Readme.txt", b"Synthetic ISMN-format sample made by transforms.synthetic\r\n"))
    if ismn_layout == "zip":
        path = os.path.join(ismn_root, "ISMN_sample.zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files:
                info = zipfile.ZipInfo(name, date_time=(2022, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, data)
        return path
    path = os.path.join(ismn_root, "ISMN_sample")
    for name, data in files:
        full = os.path.join(path, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
    return path

