"""A direct re-statement of the released ``combine_ismn_data.py`` algorithm.

One process, one example at a time, exactly as the release works: read with
``tf.data.TFRecordDataset``, decode the
whole example into protobuf objects, look the station up through
``ismn.interface.ISMN_Interface``, re-read and re-parse the sensor's file for
every example, slice the readings with pandas, and re-encode the example.

It is deliberately naive. It serves twice: as the oracle the Beam pipeline's
results are compared with in the tests (an independent path through the
``ismn`` package's own station and sensor objects, in the order the package
lists them), and as the baseline of ``benchmarks/combine_benchmark.py``.

It imports nothing from the pipeline: every rule is restated here from
``shared/reference-notes.md``, so a change to the pipeline's rules cannot
change the oracle with it.
"""

import dataclasses
import os
from typing import Iterable

import pandas as pd

LABEL_KEYS = ("sm_0_5", "sm_5_5")


def _station_matches(id_station: str, ismn_station: str) -> bool:
    """Every ``_`` part of the id's station name occurs in the ISMN station
    name, or in it with ``-`` removed."""
    return all(part in ismn_station or part in ismn_station.replace("-", "")
               for part in id_station.split("_"))


@dataclasses.dataclass
class ReleasedCounts:
    success: int = 0
    lookup_failures: int = 0
    value_failures: int = 0
    already_labelled: int = 0


def released_merge(shards: Iterable[str], ismn_path: str, output_dir: str,
                   time_tolerance_minutes: float = 3) -> ReleasedCounts:
    import tensorflow as tf
    from ismn.interface import ISMN_Interface

    data = ISMN_Interface(ismn_path, parallel=False)
    tolerance = pd.Timedelta(minutes=time_tolerance_minutes)
    counts = ReleasedCounts()
    os.makedirs(output_dir, exist_ok=True)
    for shard in shards:
        out = os.path.join(output_dir, os.path.basename(shard))
        with tf.io.TFRecordWriter(out, options="GZIP") as writer:
            for raw in tf.data.TFRecordDataset(shard, compression_type="GZIP"):
                example = tf.train.Example.FromString(raw.numpy())
                feature = example.features.feature
                if any(k in feature for k in LABEL_KEYS):
                    counts.already_labelled += 1
                    writer.write(example.SerializeToString())
                    continue
                sensor_id = feature["sensor_id"].bytes_list.value[0].decode()
                parts = sensor_id.split("__")
                if len(parts) != 3:  # the release's ValueError inside the lookup
                    counts.value_failures += 1
                    continue
                network, station_name, _ = parts
                if network not in data.networks:
                    counts.lookup_failures += 1
                    continue
                stations = data.networks[network].stations
                station = next((stations[name] for name in sorted(stations)
                                if _station_matches(station_name, name)), None)
                sensor = None if station is None else next(
                    (station.sensors[name] for name in station.sensors  # the package's order
                     if "0.05" in name and "soil_moisture" in name), None)
                if sensor is None:
                    counts.lookup_failures += 1
                    continue
                readings = sensor.read_data()  # the whole file, again, per example
                millis = int(feature["timestamp"].float_list.value[0])
                t = pd.Timestamp(millis // 1000, unit="s")
                window = readings[(readings.index >= t - tolerance) & (readings.index <= t + tolerance)]
                if len(window) == 0:
                    counts.lookup_failures += 1
                    continue
                if len(window) > 1:
                    counts.value_failures += 1
                    continue
                feature["sm_0_5"].float_list.value.append(
                    float(window.iloc[0, 0]))
                counts.success += 1
                writer.write(example.SerializeToString())
    return counts
