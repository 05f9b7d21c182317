"""Steps 2-4 of the merge: the ISMN catalog, the station and sensor rules, the window.

``ReadIsmnCatalog`` lists the download once (file names only) into a side
input; ``ResolveFn`` applies the released station and sensor rules
(``rules.resolve_station``, ``rules.choose_sensor``) to each ``ExampleRef``;
``MatchSensorFn`` parses each needed sensor file once and applies the window
rule (``window.match_readings``) to all of that sensor's refs.
"""

import dataclasses
import logging
import math
from typing import Dict, List, NamedTuple, Optional, Tuple

import apache_beam as beam

from transforms.dataset import schema
from transforms.dataset.failures import Failure
from transforms.insitu import ismn_files, listing, window
from transforms.merge import rules
from transforms.merge.accounting import COUNTERS
from transforms.merge.scan import ExampleRef

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class CatalogOrError:
    catalog: Optional[listing.Catalog]
    error: Optional[str] = None
    provenance: Optional[Dict[str, object]] = None


def read_catalog(ismn_path: str) -> CatalogOrError:
    """The catalog of a download, or the error that makes it unusable.

    A download in which no data file sits in the ISMN layout (an empty zip,
    files flat at the top, ...) is unusable.
    """
    try:
        paths = ismn_files.list_data_files(ismn_path)
        catalog = listing.build_catalog(paths)
        if not catalog.files:
            raise listing.IsmnDataError(
                f"ISMN download {ismn_path}: no ISMN data file found in the layout "
                f"{listing.LAYOUT} ({len(paths)} .stm files seen)")
        prov = ismn_files.provenance(ismn_path, len(catalog.files))
    except listing.IsmnDataError as e:
        _LOG.error("%s", e)
        COUNTERS("ismn_archive_errors").inc()
        return CatalogOrError(None, str(e), {"path": ismn_path, "error": str(e)})
    for path in catalog.bad_names:
        _LOG.warning("ISMN file %s: name does not follow the ISMN convention; ignored", path)
    for path in catalog.duplicate_files:
        _LOG.warning("ISMN file %s repeats a sensor name of an earlier file; ignored", path)
    _LOG.info("ISMN catalog of %s: %d networks, %d stations, %d data files", ismn_path,
              len(catalog.stations), sum(len(s) for s in catalog.stations.values()),
              len(catalog.files))
    return CatalogOrError(catalog, provenance=prov)


@dataclasses.dataclass
class ReadIsmnCatalog(beam.PTransform):
    """One element: the ``CatalogOrError`` of the download at ``ismn_path``."""

    ismn_path: str

    def expand(self, pbegin):
        return (pbegin
                | "ISMN path" >> beam.Create([self.ismn_path])
                | "List ISMN files" >> beam.Map(read_catalog))


class Resolution(NamedTuple):
    """How one example's sensor id resolved against the ISMN download.

    Attributes:
        sensor: ``(network, station, sensor)``, the key of the ISMN file whose
            readings label the example; None when the id resolves to none.
        failure: the lookup failure when ``sensor`` is None, else None.
        other_stations: further stations of the network matching the id (the
            first match is used).
        type_mismatch: the chosen sensor's instrument is not the id's sensor type.
    """

    sensor: Optional[Tuple[str, str, str]]
    failure: Optional[Failure]
    other_stations: List[str]
    type_mismatch: bool


def resolve_ref(ref: ExampleRef, cat: CatalogOrError, match_sensor_type: bool = False) -> Resolution:
    """Apply the released station and sensor rules to one example's id.

    Args:
        ref: the example (its ``sensor_id``, shard and index).
        cat: the download's catalog, or the error that makes it unusable.
        match_sensor_type: prefer a sensor whose instrument matches the id's type.

    Returns:
        The ``Resolution``: a sensor, or a lookup failure naming why not.
    """
    def lookup_failure(reason: str, others=()) -> Resolution:
        return Resolution(None, Failure(ref.shard, ref.index, "lookup", reason, ref.sensor_id,
                                        ref.timestamp), list(others), False)

    if cat.catalog is None:
        return lookup_failure(cat.error)
    network, id_station, id_type = schema.split_sensor_id(ref.sensor_id)
    stations = cat.catalog.stations.get(network)
    if stations is None:
        return lookup_failure(f"network {network!r} is not an ISMN network of the download")
    matches = rules.resolve_station(id_station, stations)
    if not matches:
        return lookup_failure(f"no station of network {network!r} matches {id_station!r}")
    sensor, mismatch = rules.choose_sensor(stations[matches[0]], cat.catalog.instruments, id_type,
                                          match_sensor_type)
    if sensor is None:
        tokens = f"'{listing.SENSOR_DEPTH_TOKEN}' and '{listing.SENSOR_VARIABLE_TOKEN}'"
        return lookup_failure(f"station {network}/{matches[0]} has no sensor with {tokens}",
                              matches[1:])
    return Resolution((network, matches[0], sensor), None, matches[1:], mismatch)


class ResolveFn(beam.DoFn):
    """ExampleRef -> ``(sensor_key, ref)``; tagged ``failures`` and ``mismatches``
    (the shard path of each example labelled by a sensor of another type)."""

    FAILURES, MISMATCHES = "failures", "mismatches"

    def __init__(self, match_sensor_type: bool = False):
        self.match_sensor_type = match_sensor_type
        self.lookup = COUNTERS("lookup_failure")
        self.ambiguous = COUNTERS("ambiguous_station")
        self.mismatch = COUNTERS("sensor_type_mismatch")

    def process(self, ref: ExampleRef, cat: CatalogOrError):
        resolved = resolve_ref(ref, cat, self.match_sensor_type)
        key, others = resolved.sensor, resolved.other_stations
        if resolved.type_mismatch:
            self.mismatch.inc()
            yield beam.pvalue.TaggedOutput(self.MISMATCHES, ref.shard)
        if others:
            self.ambiguous.inc()
            network, id_station, _ = schema.split_sensor_id(ref.sensor_id)
            _LOG.debug("station %r of network %s matches several ISMN stations %s; using %r "
                         "(%s record %d)", id_station, network,
                         [key[1] if key else None] + others, key[1] if key else None,
                         ref.shard, ref.index)
        if resolved.failure is not None:
            self.lookup.inc()
            yield beam.pvalue.TaggedOutput(self.FAILURES, resolved.failure)
        else:
            yield key, ref


class MatchSensorFn(beam.DoFn):
    """``(sensor_key, refs)`` -> ``(shard, (index, value))``; tagged ``failures``.

    Parses the sensor's ISMN file once for all its refs. Keeps the zip (if
    the download is one) open for the DoFn's life.
    """

    FAILURES = "failures"

    def __init__(self, ismn_path: str, tolerance_s: int, good_flags_only: bool,
                 nonfinite_as_value_failure: bool = False):
        self.ismn_path = ismn_path
        self.tolerance_s = tolerance_s
        self.good_flags_only = good_flags_only
        self.nonfinite_as_value_failure = nonfinite_as_value_failure
        self._archive = ismn_files.OpenArchive(ismn_path)
        self.count = COUNTERS.named(success="success", lookup="lookup_failure",
                                    value="value_failure", files_read="ismn_files_read",
                                    files_failed="ismn_files_failed")

    def teardown(self):
        self._archive.close()

    def process(self, element, cat: CatalogOrError):
        key, refs = element
        refs = sorted(refs)
        rel_path = cat.catalog.files[key]
        try:
            readings = ismn_files.read_readings(self.ismn_path, rel_path, self._archive.zip_file())
            self.count.files_read.inc()
        except listing.IsmnDataError as e:
            _LOG.error("%s", e)
            self.count.files_failed.inc()
            for ref in refs:
                self.count.lookup.inc()
                yield beam.pvalue.TaggedOutput(self.FAILURES, Failure(
                    ref.shard, ref.index, "lookup", str(e), ref.sensor_id, ref.timestamp,
                    ismn_file=rel_path))
            return
        for ref in refs:
            m = window.match_readings(readings, window.timestamp_seconds(ref.timestamp),
                                    self.tolerance_s, self.good_flags_only)
            if (self.nonfinite_as_value_failure and m.kind == "success"
                    and not math.isfinite(m.value)):
                m = window.Match("value", reason=f"the one reading is {m.value} ({m.reason})")
            if m.kind == "success":
                self.count.success.inc()
                yield ref.shard, (ref.index, m.value)
            else:
                (self.count.lookup if m.kind == "lookup" else self.count.value).inc()
                yield beam.pvalue.TaggedOutput(self.FAILURES, Failure(
                    ref.shard, ref.index, m.kind, f"{'/'.join(key)}: {m.reason}",
                    ref.sensor_id, ref.timestamp))
