"""DoFns and PTransforms of the ISMN label merge (``pipelines.combine_ismn_data``).

The examples themselves never cross a shuffle; only light references do:

1. ``ScanShards``: read every shard once, walking each record's wire format
   for ``sensor_id``, ``timestamp`` and the label keys. Labelled examples need
   nothing more; the others become ``ExampleRef``s. Malformed records and
   unreadable shard tails become failure records.
2. ``ReadIsmnCatalog``: list the ISMN download once (file names only) into a
   ``Catalog`` of networks, stations and sensors, used as a side input.
3. ``ResolveFn``: the released station and sensor rules; unresolvable refs
   are lookup failures, the rest are keyed by ISMN sensor.
4. ``MatchSensorFn``: group refs by sensor, parse that sensor's file once with
   the ``ismn`` package, apply the +-tolerance window rule to every ref:
   ``(shard, (index, value))`` labels, or lookup/value failures.
5. ``RewriteShards``: group labels by shard (every shard, even one without
   labels) and re-read the shard in order, writing labelled examples unchanged
   and ISMN ones with ``sm_0_5`` appended to their bytes, atomically under the
   input shard's name.

Every record read ends as a written example or a failure record; the counters
(namespace ``combine_ismn_data``) add up to ``examples_read``.
"""

import dataclasses
import json
import logging
import posixpath
import time
import zipfile
from typing import Dict, List, NamedTuple, Optional, Tuple

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms.dataset import example_proto, schema, tfrecord_io

from transforms.merge import ismn
from transforms.runtime.progress import ShardProgress

NAMESPACE = "combine_ismn_data"
FAILURE_KINDS = ("lookup", "value", "malformed", "corrupt")
_LOG = logging.getLogger(__name__)


def counter(name: str):
    return Metrics.counter(NAMESPACE, name)


class ExampleRef(NamedTuple):
    """Where an unlabelled example is and what identifies its reading."""

    shard: str  # full input path
    index: int  # position in the shard
    sensor_id: str
    timestamp: float  # as stored: float32 Unix milliseconds


def failure(shard: str, index: int, kind: str, reason: str, sensor_id: Optional[str] = None,
            timestamp: Optional[float] = None, ismn_file: Optional[str] = None) -> Dict[str, object]:
    """A failure record (one line of ``failures.jsonl``); ``ismn_file``: the
    ISMN data file that could not be read, when that is the reason."""
    assert kind in FAILURE_KINDS, kind
    record = {"shard": posixpath.basename(shard), "path": shard, "index": index,
              "sensor_id": sensor_id, "timestamp": timestamp, "kind": kind, "reason": reason}
    if ismn_file is not None:
        record["ismn_file"] = ismn_file
    return record


# --------------------------------------------------------------------------
# 1. Scan

_SCAN_KEYS = (schema.SENSOR_ID, schema.TIMESTAMP, *schema.LABEL_KEYS)


def classify_record(shard: str, index: int, record: bytes):
    """``("labelled", None)``, ``("ref", ExampleRef)`` or ``("malformed", failure)``."""
    try:
        found = example_proto.read_features(record, _SCAN_KEYS)
    except example_proto.MalformedExampleError as e:
        return "malformed", failure(shard, index, "malformed", f"not a tf.train.Example: {e}")
    if any(k in found for k in schema.LABEL_KEYS):
        return "labelled", None
    sid = found.get(schema.SENSOR_ID)
    ts = found.get(schema.TIMESTAMP)
    sensor_id = sid[0].decode("utf-8", "replace") if sid and isinstance(sid[0], bytes) else None
    timestamp = float(ts[0]) if ts and isinstance(ts[0], float) else None
    problem = None
    if sensor_id is None:
        problem = "missing or non-bytes sensor_id"
    elif timestamp is None:
        problem = "missing or non-float timestamp"
    else:
        try:
            schema.split_sensor_id(sensor_id)
            ismn.timestamp_seconds(timestamp)
        except ValueError as e:
            problem = str(e)
    if problem:
        return "malformed", failure(shard, index, "malformed", problem, sensor_id, timestamp)
    return "ref", ExampleRef(shard, index, sensor_id, timestamp)


class ScanShardFn(beam.DoFn):
    """Shard path -> ExampleRefs; tagged ``failures`` and ``reports``."""

    FAILURES, REPORTS = "failures", "reports"

    def __init__(self, progress_dir: Optional[str] = None):
        self.progress_dir = progress_dir
        self.read = counter("examples_read")
        self.labelled = counter("already_labelled")
        self.to_merge = counter("ismn_examples")
        self.malformed = counter("malformed")
        self.corrupt = counter("corrupt")
        self.shards = counter("shards_read")
        self.incomplete = counter("shards_incomplete")

    def process(self, shard: str):
        start = time.time()
        n = labelled = refs = 0
        report = {"shard": posixpath.basename(shard), "path": shard, "complete": True}
        progress = ShardProgress(self.progress_dir, "read", shard)
        try:
            for record in tfrecord_io.read_shard(shard, lambda b: progress.update(n, b)):
                what, value = classify_record(shard, n, record)
                n += 1
                if what == "labelled":
                    labelled += 1
                elif what == "ref":
                    refs += 1
                    yield value
                else:
                    self.malformed.inc()
                    yield beam.pvalue.TaggedOutput(self.FAILURES, value)
        except tfrecord_io.CorruptShardError as e:
            _LOG.error("shard %s cannot be read past record %d: %s", shard, e.index, e.reason)
            self.corrupt.inc()
            self.incomplete.inc()
            report.update(complete=False, error=str(e))
            yield beam.pvalue.TaggedOutput(
                self.FAILURES, failure(shard, e.index, "corrupt", e.reason))
        progress.update(n, done=True)
        self.read.inc(n + (0 if report["complete"] else 1))
        self.labelled.inc(labelled)
        self.to_merge.inc(refs)
        self.shards.inc()
        report.update(records=n, already_labelled=labelled, ismn_examples=refs,
                      seconds=round(time.time() - start, 3))
        _LOG.info("scanned %s: %d records, %d already labelled, %d to merge (%.1f s)",
                  shard, n, labelled, refs, time.time() - start)
        yield beam.pvalue.TaggedOutput(self.REPORTS, report)


@dataclasses.dataclass
class ScanShards(beam.PTransform):
    """Shard paths -> ``ExampleRef``s, with ``failures`` and per-shard ``reports``.

    ``progress_dir``: where local runs report progress (``transforms.runtime.progress``).
    """

    progress_dir: Optional[str] = None

    def expand(self, shards):
        return (shards
                | "Spread shards" >> beam.Reshuffle()
                | "Walk records" >> beam.ParDo(ScanShardFn(self.progress_dir)).with_outputs(
                    ScanShardFn.FAILURES, ScanShardFn.REPORTS, main="refs"))


# --------------------------------------------------------------------------
# 2. ISMN catalog

@dataclasses.dataclass
class CatalogOrError:
    catalog: Optional[ismn.Catalog]
    error: Optional[str] = None
    provenance: Optional[Dict[str, object]] = None


def read_catalog(ismn_path: str) -> CatalogOrError:
    """The catalog of a download, or the error that makes it unusable.

    A download in which no data file sits in the ISMN layout (an empty zip,
    files flat at the top, ...) is unusable.
    """
    try:
        paths = ismn.list_data_files(ismn_path)
        catalog = ismn.build_catalog(paths)
        if not catalog.files:
            raise ismn.IsmnDataError(
                f"ISMN download {ismn_path}: no ISMN data file found in the layout "
                f"{ismn.LAYOUT} ({len(paths)} .stm files seen)")
        prov = ismn.provenance(ismn_path, len(catalog.files))
    except ismn.IsmnDataError as e:
        _LOG.error("%s", e)
        counter("ismn_archive_errors").inc()
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


# --------------------------------------------------------------------------
# 3. Resolve

def resolve_ref(ref: ExampleRef, cat: CatalogOrError, match_sensor_type: bool = False):
    """``(sensor_key, None)`` or ``(None, failure)``; third item: other matching
    stations; fourth: the chosen sensor's instrument is not the id's sensor type."""
    if cat.catalog is None:
        return None, failure(ref.shard, ref.index, "lookup", cat.error, ref.sensor_id,
                             ref.timestamp), [], False
    network, id_station, id_type = schema.split_sensor_id(ref.sensor_id)
    stations = cat.catalog.stations.get(network)
    if stations is None:
        return None, failure(ref.shard, ref.index, "lookup",
                             f"network {network!r} is not an ISMN network of the download",
                             ref.sensor_id, ref.timestamp), [], False
    matches = ismn.resolve_station(id_station, stations)
    if not matches:
        return None, failure(ref.shard, ref.index, "lookup",
                             f"no station of network {network!r} matches {id_station!r}",
                             ref.sensor_id, ref.timestamp), [], False
    sensor, mismatch = ismn.choose_sensor(stations[matches[0]], cat.catalog.instruments, id_type,
                                          match_sensor_type)
    if sensor is None:
        return None, failure(ref.shard, ref.index, "lookup",
                             f"station {network}/{matches[0]} has no sensor with "
                             f"'{ismn.SENSOR_DEPTH_TOKEN}' and '{ismn.SENSOR_VARIABLE_TOKEN}'",
                             ref.sensor_id, ref.timestamp), matches[1:], False
    return (network, matches[0], sensor), None, matches[1:], mismatch


class ResolveFn(beam.DoFn):
    """ExampleRef -> ``(sensor_key, ref)``; tagged ``failures`` and ``mismatches``
    (the shard path of each example labelled by a sensor of another type)."""

    FAILURES, MISMATCHES = "failures", "mismatches"

    def __init__(self, match_sensor_type: bool = False):
        self.match_sensor_type = match_sensor_type
        self.lookup = counter("lookup_failure")
        self.ambiguous = counter("ambiguous_station")
        self.mismatch = counter("sensor_type_mismatch")

    def process(self, ref: ExampleRef, cat: CatalogOrError):
        key, fail, others, mismatch = resolve_ref(ref, cat, self.match_sensor_type)
        if mismatch:
            self.mismatch.inc()
            yield beam.pvalue.TaggedOutput(self.MISMATCHES, ref.shard)
        if others:
            self.ambiguous.inc()
            network, id_station, _ = schema.split_sensor_id(ref.sensor_id)
            _LOG.debug("station %r of network %s matches several ISMN stations %s; using %r "
                         "(%s record %d)", id_station, network,
                         [key[1] if key else None] + others, key[1] if key else None,
                         ref.shard, ref.index)
        if fail is not None:
            self.lookup.inc()
            yield beam.pvalue.TaggedOutput(self.FAILURES, fail)
        else:
            yield key, ref


# --------------------------------------------------------------------------
# 4. Match

class MatchSensorFn(beam.DoFn):
    """``(sensor_key, refs)`` -> ``(shard, (index, value))``; tagged ``failures``.

    Parses the sensor's ISMN file once for all its refs. Keeps the zip (if
    the download is one) open for the DoFn's life.
    """

    FAILURES = "failures"

    def __init__(self, ismn_path: str, tolerance_s: int, good_flags_only: bool):
        self.ismn_path = ismn_path
        self.tolerance_s = tolerance_s
        self.good_flags_only = good_flags_only
        self._zip = None
        self._zip_stream = None
        self.success = counter("success")
        self.lookup = counter("lookup_failure")
        self.value = counter("value_failure")
        self.files_read = counter("ismn_files_read")
        self.files_failed = counter("ismn_files_failed")

    def _zip_file(self) -> Optional[zipfile.ZipFile]:
        if ismn.is_zip(self.ismn_path) and self._zip is None:
            self._zip_stream = FileSystems.open(
                self.ismn_path, compression_type=CompressionTypes.UNCOMPRESSED)
            self._zip = zipfile.ZipFile(self._zip_stream)
        return self._zip

    def teardown(self):
        for closer in (self._zip, self._zip_stream):
            if closer is not None:
                closer.close()
        self._zip = self._zip_stream = None

    def process(self, element, cat: CatalogOrError):
        key, refs = element
        refs = sorted(refs)
        rel_path = cat.catalog.files[key]
        try:
            readings = ismn.read_readings(self.ismn_path, rel_path, self._zip_file())
            self.files_read.inc()
        except ismn.IsmnDataError as e:
            _LOG.error("%s", e)
            self.files_failed.inc()
            for ref in refs:
                self.lookup.inc()
                yield beam.pvalue.TaggedOutput(self.FAILURES, failure(
                    ref.shard, ref.index, "lookup", str(e), ref.sensor_id, ref.timestamp,
                    ismn_file=rel_path))
            return
        for ref in refs:
            m = ismn.match_readings(readings, ismn.timestamp_seconds(ref.timestamp),
                                    self.tolerance_s, self.good_flags_only)
            if m.kind == "success":
                self.success.inc()
                yield ref.shard, (ref.index, m.value)
            else:
                (self.lookup if m.kind == "lookup" else self.value).inc()
                yield beam.pvalue.TaggedOutput(self.FAILURES, failure(
                    ref.shard, ref.index, m.kind, f"{'/'.join(key)}: {m.reason}",
                    ref.sensor_id, ref.timestamp))


# --------------------------------------------------------------------------
# 5. Rewrite

def rewrite_shard(shard: str, output_path: str, labels: Dict[int, float],
                  progress: Optional[ShardProgress] = None) -> Tuple[int, int]:
    """Write ``shard``'s labelled examples to ``output_path``; returns (written, merged).

    Already labelled examples are copied byte for byte; examples whose index
    is in ``labels`` get ``sm_0_5`` appended; the others are left out (their
    failure is recorded elsewhere). Stops quietly at a corrupt tail (reported
    by the scan) and writes what came before it.
    """
    written = merged = 0
    progress = progress or ShardProgress(None, "write", shard)
    with tfrecord_io.AtomicShardWriter(output_path) as writer:
        try:
            for index, record in enumerate(tfrecord_io.read_shard(
                    shard, lambda b: progress.update(written, b))):
                if index in labels:
                    writer.write(example_proto.append_float_feature(
                        record, schema.MERGED_LABEL_KEY, labels[index]))
                    merged += 1
                elif _is_labelled(record):
                    writer.write(record)
                else:
                    continue
                written += 1
        except tfrecord_io.CorruptShardError:
            pass
    progress.update(written, done=True)
    return written, merged


def _is_labelled(record: bytes) -> bool:
    try:
        return bool(example_proto.read_features(record, schema.LABEL_KEYS))
    except example_proto.MalformedExampleError:
        return False


class RewriteShardFn(beam.DoFn):
    def __init__(self, output_dir: str, progress_dir: Optional[str] = None):
        self.output_dir = output_dir
        self.progress_dir = progress_dir
        self.written = counter("examples_written")

    def process(self, element):
        shard, grouped = element
        labels = dict(grouped["labels"])
        if not grouped["shard"]:  # labels for a shard not in the input
            raise RuntimeError(f"labels for {shard}, which is not an input shard")
        start = time.time()
        out = FileSystems.join(self.output_dir, posixpath.basename(shard))
        if same_file(out, shard):
            raise RuntimeError(f"refusing to overwrite input shard {shard} with its merged "
                               f"version: choose an --output_dir other than the input folder")
        written, merged = rewrite_shard(shard, out, labels,
                                        ShardProgress(self.progress_dir, "write", shard))
        if merged != len(labels):
            raise RuntimeError(f"{shard}: {len(labels)} labels but {merged} examples merged; "
                               "did the shard change during the run?")
        self.written.inc(written)
        _LOG.info("wrote %s: %d examples (%d merged from ISMN) in %.1f s",
                  out, written, merged, time.time() - start)
        yield shard, {"output": out, "written": written, "merged": merged}


@dataclasses.dataclass
class RewriteShards(beam.PTransform):
    """``{"shards": paths, "labels": (shard, (index, value))}`` -> ``(shard, write report)``."""

    output_dir: str
    progress_dir: Optional[str] = None

    def expand(self, inputs):
        return ({"shard": inputs["shards"] | "Key shards" >> beam.Map(lambda s: (s, None)),
                 "labels": inputs["labels"]}
                | "Group labels by shard" >> beam.CoGroupByKey()
                | "Write merged shards" >> beam.ParDo(
                    RewriteShardFn(self.output_dir, self.progress_dir)))


# --------------------------------------------------------------------------
# The whole merge

@dataclasses.dataclass
class MergeIsmnLabels(beam.PTransform):
    """Input shard paths -> merged shards in ``output_dir``.

    Returns a dict of PCollections: ``failures`` (failure records) and
    ``reports`` (one per input shard: ``shard_report``).
    """

    ismn_path: str
    output_dir: str
    time_tolerance_minutes: float = 3
    good_flags_only: bool = False
    match_sensor_type: bool = False
    progress_dir: Optional[str] = None

    #: the passes over the input shards, for ``transforms.runtime.progress``
    STAGES = ("read", "write")

    def expand(self, shards):
        scanned = shards | "Scan shards" >> ScanShards(self.progress_dir)
        catalogs = shards.pipeline | "Read ISMN catalog" >> ReadIsmnCatalog(self.ismn_path)
        catalog = beam.pvalue.AsSingleton(catalogs)
        resolved = scanned.refs | "Resolve stations" >> beam.ParDo(
            ResolveFn(self.match_sensor_type), catalog).with_outputs(
                ResolveFn.FAILURES, ResolveFn.MISMATCHES, main="keyed")
        matched = (resolved.keyed
                   | "Group refs by sensor" >> beam.GroupByKey()
                   | "Match readings" >> beam.ParDo(
                       MatchSensorFn(self.ismn_path, int(round(self.time_tolerance_minutes * 60)),
                                     self.good_flags_only),
                       catalog).with_outputs(MatchSensorFn.FAILURES, main="labels"))
        written = ({"shards": shards, "labels": matched.labels}
                   | "Rewrite shards" >> RewriteShards(self.output_dir, self.progress_dir))
        failures = ((scanned.failures, resolved.failures, matched.failures)
                    | "All failures" >> beam.Flatten())
        reports = ({"scan": scanned.reports | "Key scan reports" >> beam.Map(lambda r: (r["path"], r)),
                    "write": written,
                    "failed": failures | "Key failures" >> beam.Map(
                        lambda f: (f["path"], (f["kind"], f.get("ismn_file")))),
                    "mismatch": resolved.mismatches | "Key mismatches" >> beam.Map(
                        lambda path: (path, 1))}
                   | "Group reports by shard" >> beam.CoGroupByKey()
                   | "Shard reports" >> beam.Map(shard_report))
        ismn_provenance = catalogs | "ISMN provenance" >> beam.Map(provenance_of)
        return {"failures": failures, "reports": reports, "ismn_provenance": ismn_provenance}


def provenance_of(cat: CatalogOrError):
    return dict(cat.provenance or {})


def shard_report(element) -> Dict[str, object]:
    """One shard's accounting, from the pipeline's data (exact even when a
    runner retries bundles, unlike counters on some local runners)."""
    path, grouped = element
    (scan,), (write,) = grouped["scan"], grouped["write"]
    failed = list(grouped["failed"])
    kinds = [kind for kind, _ in failed]
    report = dict(scan)
    report.update(written=write["written"], success=write["merged"],
                  failures={k: kinds.count(k) for k in FAILURE_KINDS if k in kinds},
                  sensor_type_mismatch=len(list(grouped["mismatch"])),
                  unreadable_ismn_files=sorted({f for _, f in failed if f}))
    report["examples_read"] = scan["records"] + (0 if scan["complete"] else 1)
    report["accounted"] = report["examples_read"] == write["written"] + len(kinds)
    return report


def plan_outputs(input_paths: List[str], output_dir: str) -> Dict[str, str]:
    """Input shard -> the output path it is merged into (same file name in ``output_dir``).

    Raises ValueError when two inputs share a file name (one would be lost)
    or an output would replace an input (the input would be destroyed).
    """
    by_name: Dict[str, List[str]] = {}
    for path in input_paths:
        by_name.setdefault(posixpath.basename(path), []).append(path)
    clashes = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    if clashes:
        listed = "; ".join(" and ".join(paths) for paths in clashes.values())
        raise ValueError(f"input shards with the same file name would be merged into one "
                         f"output file: {listed}. Merge each folder into its own --output_dir")
    plan = {path: FileSystems.join(output_dir, name) for name, (path,) in by_name.items()}
    for out in plan.values():
        replaced = next((p for p in plan if same_file(out, p)), None)
        if replaced is not None:
            raise ValueError(f"output {out} would replace input shard {replaced}: --output_dir "
                             f"{output_dir} must not be the folder of the input shards")
    return plan


def same_file(a: str, b: str) -> bool:
    """``a`` and ``b`` name the same file (local paths resolved, links followed)."""
    if "://" in a or "://" in b:
        return a.rstrip("/") == b.rstrip("/")
    import os
    return os.path.realpath(a) == os.path.realpath(b)


def to_json_line(record: Dict[str, object]) -> str:
    return json.dumps(record, sort_keys=True)
