"""A realistic, deterministic sample of the released dataset and an ISMN download.

The released shards and the ISMN archive cannot be fetched here (and ISMN data
may not be redistributed), so tests, the demo and the benchmarks run on data
made by this module. It is built to exercise what the real data exercises:

* Shards ``data-NNNNN-of-MMMMM.tfrecord.gz`` with every field of
  ``transforms.dataset.schema``; images are spatially smooth fields with sensor-like
  noise in plausible ranges (S1/S2 on 0-255, the generator's own choice; DEM in metres, SoilGrids in
  g/kg and cg/cm3, blocky at their coarse native resolution), so gzip ratios
  and speeds resemble the real ones.
* ``sensor_id = NETWORK__STATION__SENSOR_TYPE`` with station names that need
  the reference matching rules (``AdamsRanch_1`` -> ``AdamsRanch#1``,
  ``CST_01`` -> ``CST-01``, ``LasBrozas`` -> ``Las-Brozas`` with ``-`` removed,
  ``Bushland_1`` matching both ``Bushland#1`` and ``Bushland#10``), timestamps
  as float32 milliseconds of hourly reading times (carrying the real float32
  rounding), and a share of non-ISMN examples pre-labelled with ``sm_0_5`` or
  ``sm_5_5``.
* An ISMN archive in the real layout and file naming, CEOP or header+values,
  zip or folder: hourly series with gaps, CRLF line ends, ISMN flags, several
  depths and variables per station, ``static_variables.csv`` missing for some.
* Planted failures: unknown network, unknown station, station without a 0.05 m
  soil-moisture sensor, timestamps in gaps, two readings within 3 minutes.
* ``ground_truth.jsonl``: each example's expected merge outcome and label.

Labels depend on SMAP, GLDAS, Sentinel-1 VV and soil texture plus noise
(``label_from_inputs``), so evaluation and training have a signal to find.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
from typing import Dict, List, Tuple

import numpy as np

from transforms.dataset import schema, tfrecord_io
from transforms.synthetic.examples import draw_inputs, label_from_inputs, make_example
from transforms.synthetic.ismn_files import (Series, gap_hours, latent_series, reading_flags,
                                             write_ismn)
from transforms.synthetic.stations import (AMBIGUOUS_ID_STATIONS, EPOCH, HYDRAPROBE, ID_STATIONS,
                                           NO_SENSOR_ID_STATION, PRELABELLED_IDS, STATIONS,
                                           UNKNOWN_NETWORK_IDS, UNKNOWN_STATION_IDS, SensorSpec,
                                           first_05_sm_sensor, station_spec)

CATEGORIES = ("success", "prelabelled_sm_0_5", "prelabelled_sm_5_5", "unknown_network",
              "unknown_station", "no_sensor", "gap", "duplicate")
_WEIGHTS = (0.55, 0.17, 0.08, 0.04, 0.04, 0.04, 0.04, 0.04)
OUTCOME = {"success": "success", "prelabelled_sm_0_5": "prelabelled",
           "prelabelled_sm_5_5": "prelabelled", "unknown_network": "lookup",
           "unknown_station": "lookup", "no_sensor": "lookup", "gap": "lookup",
           "duplicate": "value"}


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    """What to generate (the flags of ``pipelines.make_sample_data``)."""

    output_dir: str
    num_shards: int = 2
    examples_per_shard: int = 16
    image_size: int = 64
    seed: int = 0
    ismn_format: str = "ceop"  # or "header_values"
    ismn_layout: str = "zip"  # or "dir"
    ismn_days: int = 365  # length of the hourly ISMN series
    start: str = "2016-01-01"

    def __post_init__(self):
        if self.ismn_format not in ("ceop", "header_values"):
            raise ValueError(f"ismn_format must be ceop or header_values, not {self.ismn_format!r}")
        if self.ismn_layout not in ("zip", "dir"):
            raise ValueError(f"ismn_layout must be zip or dir, not {self.ismn_layout!r}")
        if self.image_size < 4 or self.num_shards < 1 or self.examples_per_shard < 1:
            raise ValueError("image_size >= 4, num_shards >= 1, examples_per_shard >= 1")
        if self.ismn_days < 10:
            raise ValueError("ismn_days must be at least 10")


@dataclasses.dataclass
class SamplePaths:
    shards_glob: str
    shards: List[str]
    ismn_path: str
    ground_truth: str
    manifest: str
    #: (network, station, ismn sensor name) -> the readings written for it
    series: Dict[Tuple[str, str, str], "Series"] = dataclasses.field(default_factory=dict)


# --------------------------------------------------------------------------
# ISMN series

def _start_seconds(cfg: SampleConfig) -> int:
    return int((dt.datetime.fromisoformat(cfg.start) - EPOCH).total_seconds())


# --------------------------------------------------------------------------
# Images

# --------------------------------------------------------------------------
# ISMN archive writing

# --------------------------------------------------------------------------
# The whole sample

def _plan_categories(rng, n: int) -> List[str]:
    """Example categories: every category once (if n allows), the rest drawn."""
    base = list(CATEGORIES[: min(n, len(CATEGORIES))])
    rest = rng.choice(CATEGORIES, size=n - len(base), p=_WEIGHTS).tolist()
    plan = base + [str(c) for c in rest]
    rng.shuffle(plan)
    return plan


def generate(cfg: SampleConfig, log=print) -> SamplePaths:
    """Write shards, the ISMN archive, ground truth and a manifest under ``cfg.output_dir``."""
    rng = np.random.default_rng(cfg.seed)
    out = cfg.output_dir
    shard_dir = os.path.join(out, "shards")
    ismn_root = os.path.join(out, "ismn")
    for d in (shard_dir, ismn_root):
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(d)

    hours = cfg.ismn_days * 24
    t_start = _start_seconds(cfg)
    hour_times = t_start + 3600 * np.arange(hours, dtype=np.int64)

    # 1. Series for every sensor of every station (gaps shared by a station).
    series: Dict[Tuple[str, str, SensorSpec], Series] = {}
    gaps: Dict[Tuple[str, str], np.ndarray] = {}
    for st in STATIONS:
        missing = gap_hours(rng, hours)
        gaps[(st.network, st.name)] = missing
        base = float(rng.uniform(0.12, 0.32))
        for sensor in st.sensors:
            vals = np.round(latent_series(rng, hours, base, sensor.variable), 4)
            keep = ~missing
            series[(st.network, st.name, sensor)] = Series(
                hour_times[keep].copy(), vals[keep].copy(), reading_flags(rng, int(keep.sum())))

    # 2. Plan the examples and fix their outcomes.
    n_total = cfg.num_shards * cfg.examples_per_shard
    plan = _plan_categories(rng, n_total)
    used_times: Dict[Tuple[str, str], set] = {}
    records = []  # (category, sensor_id, t, lat, lon, elev, inputs, label, truth)
    margin = 48  # keep label times away from the series ends
    for category in plan:
        x = draw_inputs(rng)
        noise = float(rng.normal(0, 0.015))
        truth: Dict[str, object] = {"case": category, "outcome": OUTCOME[category]}
        label = None
        if category.startswith("prelabelled"):
            net, name, kind = PRELABELLED_IDS[int(rng.integers(len(PRELABELLED_IDS)))]
            key = schema.SM_0_5 if category.endswith("0_5") else schema.SM_5_5
            t = int(hour_times[int(rng.integers(margin, hours - margin))])
            value = label_from_inputs(x, noise)
            label = (key, value)
            truth.update(label_key=key, label=value)
            sensor_id = f"{net}__{name}__{kind}"
            lat, lon, elev = 35.0 + rng.uniform(-5, 5), -100 + rng.uniform(-5, 5), 500.0
        elif category in ("unknown_network", "unknown_station"):
            pool = UNKNOWN_NETWORK_IDS if category == "unknown_network" else UNKNOWN_STATION_IDS
            net, name = pool[int(rng.integers(len(pool)))]
            sensor_id = f"{net}__{name}__{HYDRAPROBE}"
            t = int(hour_times[int(rng.integers(margin, hours - margin))])
            lat, lon, elev = 40.0, -90.0, 300.0
        else:
            if category == "no_sensor":
                net, id_name, ismn_name = NO_SENSOR_ID_STATION
            else:
                net, id_name, ismn_name = ID_STATIONS[int(rng.integers(len(ID_STATIONS)))]
            st = station_spec(net, ismn_name)
            sensor = first_05_sm_sensor(st, cfg.ismn_layout)
            # the id's sensor type: one of the station's 0.05 m soil-moisture
            # instruments, so stations with two give ids of either type
            kinds = sorted({c.instrument for c in st.sensors
                            if "0.05" in c.ismn_name and "soil_moisture" in c.ismn_name})
            kind = kinds[int(rng.integers(len(kinds)))] if len(kinds) > 1 else (
                sensor or st.sensors[0]).instrument
            sensor_id = f"{net}__{id_name}__{kind}"
            lat, lon, elev = st.lat, st.lon, st.elevation
            truth.update(ismn_network=net, ismn_station=ismn_name,
                         ambiguous_station=(net, id_name) in AMBIGUOUS_ID_STATIONS)
            if sensor is not None:
                truth["ismn_sensor"] = sensor.ismn_name
                truth["sensor_type_mismatch"] = sensor.instrument != kind
            missing = gaps[(net, ismn_name)]
            taken = used_times.setdefault((net, ismn_name), set())
            inner = np.zeros(hours, dtype=bool)
            inner[margin:hours - margin] = True
            if category == "gap":
                # an hour whose neighbours are missing too: nothing within 3 min
                ok = inner & missing & np.roll(missing, 1) & np.roll(missing, -1)
            else:
                ok = inner & ~missing & ~np.roll(missing, 1) & ~np.roll(missing, -1)
            candidates = [i for i in np.flatnonzero(ok) if i not in taken]
            i = int(candidates[int(rng.integers(len(candidates)))])
            taken.update((i - 1, i, i + 1))
            t = int(hour_times[i])
            if sensor is not None and category in ("success", "duplicate"):
                s = series[(net, ismn_name, sensor)]
                j = int(np.searchsorted(s.times, t))
                assert s.times[j] == t
                value = label_from_inputs(x, noise)
                s.values[j] = value
                if category == "success":
                    truth.update(label_key=schema.MERGED_LABEL_KEY, label=value, flag=s.flags[j])
                else:  # a second reading a minute later: a value failure
                    s.times = np.insert(s.times, j + 1, t + 60)
                    s.values = np.insert(s.values, j + 1, np.round(value + 0.01, 4))
                    s.flags.insert(j + 1, "G")
        ts32 = np.float32(t * 1000)
        truth.update(sensor_id=sensor_id, timestamp=float(ts32), reading_time_s=t)
        records.append((sensor_id, ts32, lat, lon, elev, x, label, truth))

    # 3. Check the planted outcomes against the series with the window rule
    #    (float32-rounded timestamps included).
    for sensor_id, ts32, *_rest, truth in records:
        if truth["outcome"] not in ("success", "value") and truth["case"] != "gap":
            continue
        st = station_spec(truth["ismn_network"], truth["ismn_station"])
        s = series[(st.network, st.name, first_05_sm_sensor(st, cfg.ismn_layout))]
        hits = s.window(int(ts32) // 1000)
        expected = {"success": 1, "value": 2}.get(truth["outcome"], 0)
        assert len(hits) == expected, (truth, hits)
        if expected == 1:
            assert s.values[hits[0]] == truth["label"]

    # 4. Write the ISMN archive.
    ismn_path = write_ismn(cfg.ismn_format, cfg.ismn_layout, series, rng, ismn_root)

    # 5. Write shards and ground truth.
    shards, raw_bytes, truth_rows = [], 0, []
    for k in range(cfg.num_shards):
        name = tfrecord_io.shard_name(k, cfg.num_shards)
        path = os.path.join(shard_dir, name)
        chunk = records[k * cfg.examples_per_shard:(k + 1) * cfg.examples_per_shard]
        with tfrecord_io.AtomicShardWriter(path) as writer:
            for index, (sensor_id, ts32, lat, lon, elev, x, label, truth) in enumerate(chunk):
                data = make_example(rng, cfg.image_size, sensor_id, ts32, lat, lon, elev, x, label)
                raw_bytes += len(data)
                writer.write(data)
                truth_rows.append({"shard": name, "index": index, **truth})
        shards.append(path)
        log(f"wrote {path} ({len(chunk)} examples)")
    compressed = sum(os.path.getsize(p) for p in shards)
    gt_path = os.path.join(out, "ground_truth.jsonl")
    with open(gt_path, "w") as f:
        for row in truth_rows:
            f.write(json.dumps(row, sort_keys=True) + "\n")
    counts: Dict[str, int] = {}
    for row in truth_rows:
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    manifest = {"config": dataclasses.asdict(cfg), "shards": [os.path.basename(p) for p in shards],
                "ismn_path": os.path.relpath(ismn_path, out), "examples": len(truth_rows),
                "expected_outcomes": counts, "uncompressed_bytes": raw_bytes,
                "compressed_bytes": compressed,
                "compression_ratio": round(raw_bytes / compressed, 3)}
    manifest_path = os.path.join(out, "manifest.json")
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    log(f"{len(truth_rows)} examples, {raw_bytes / 1e6:.1f} MB serialized, "
        f"{compressed / 1e6:.1f} MB gzipped: compression ratio {raw_bytes / compressed:.2f}x")
    log(f"expected merge outcomes: {counts}")
    return SamplePaths(os.path.join(shard_dir, f"data-*-of-{cfg.num_shards:05d}.tfrecord.gz"),
                       shards, ismn_path, gt_path, manifest_path,
                       {(net, name, sensor.ismn_name): s
                        for (net, name, sensor), s in series.items()})


