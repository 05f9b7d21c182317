"""The ISMN label merge as one PTransform (``pipelines.combine_ismn_data``).

The examples themselves never cross a shuffle; only light references do:

1. ``ScanShards`` (``scan.py``): read every shard once, walking each record's wire format
   for ``sensor_id``, ``timestamp`` and the label keys. Labelled examples need
   nothing more; the others become ``ExampleRef``s. Malformed records and
   unreadable shard tails become failure records.
2. ``ReadIsmnCatalog`` (``match.py``): list the ISMN download once (file names only) into a
   ``Catalog`` of networks, stations and sensors, used as a side input.
3. ``ResolveFn`` (``match.py``): the released station and sensor rules; unresolvable refs
   are lookup failures, the rest are keyed by ISMN sensor.
4. ``MatchSensorFn`` (``match.py``): group refs by sensor, parse that sensor's file once with
   the ``ismn`` package, apply the +-tolerance window rule to every ref:
   ``(shard, (index, value))`` labels, or lookup/value failures.
5. ``RewriteShards`` (``rewrite.py``): group labels by shard (every shard, even one without
   labels) and re-read the shard in order, writing labelled examples unchanged
   and ISMN ones with ``sm_0_5`` appended to their bytes, atomically under the
   input shard's name.

Every record read ends as a written example or a failure record; the counters
(``accounting.COUNTERS``) and the per-shard reports (``accounting.shard_report``)
add up to ``examples_read``. The rules themselves are plain functions in
``rules.py`` (matching) and ``ismn_files.py`` (reading the download).
"""

import dataclasses
from typing import Optional

import apache_beam as beam

from transforms.merge.config import MergeConfig
from transforms.merge.accounting import shard_report
from transforms.merge.match import CatalogOrError, MatchSensorFn, ReadIsmnCatalog, ResolveFn
from transforms.merge.rewrite import RewriteShards
from transforms.merge.scan import ScanShards


@dataclasses.dataclass
class MergeIsmnLabels(beam.PTransform):
    """Input shard paths -> merged shards in ``config.output_dir``.

    Attributes:
        config: the merge's settings (ISMN path, output folder, tolerance,
            flag and sensor-type choices).
        progress_dir: where local workers report progress (None: nowhere).

    Returns (from ``expand``) a dict of PCollections: ``failures`` (failure
    records), ``reports`` (one ``shard_report`` per input shard) and
    ``ismn_provenance`` (which ISMN snapshot labelled the data).
    """

    config: MergeConfig
    progress_dir: Optional[str] = None

    #: the passes over the input shards, for ``transforms.dataset.progress``
    STAGES = ("read", "write")

    def expand(self, shards):
        c = self.config
        scanned = shards | "Scan shards" >> ScanShards(self.progress_dir)
        catalogs = shards.pipeline | "Read ISMN catalog" >> ReadIsmnCatalog(c.ismn_data_path)
        catalog = beam.pvalue.AsSingleton(catalogs)
        resolved = scanned.refs | "Resolve stations" >> beam.ParDo(
            ResolveFn(c.match_sensor_type), catalog).with_outputs(
                ResolveFn.FAILURES, ResolveFn.MISMATCHES, main="keyed")
        matched = (resolved.keyed
                   | "Group refs by sensor" >> beam.GroupByKey()
                   | "Match readings" >> beam.ParDo(
                       MatchSensorFn(c.ismn_data_path, c.tolerance_seconds, c.ismn_good_flags_only,
                                     c.nonfinite_readings_as_value_failures),
                       catalog).with_outputs(MatchSensorFn.FAILURES, main="labels"))
        written = ({"shards": shards, "labels": matched.labels}
                   | "Rewrite shards" >> RewriteShards(c.output_dir, self.progress_dir))
        failures = ((scanned.failures, resolved.failures, matched.failures)
                    | "All failures" >> beam.Flatten())
        reports = ({"scan": scanned.reports | "Key scan reports" >> beam.Map(lambda r: (r.path, r)),
                    "write": written,
                    "failed": failures | "Key failures" >> beam.Map(
                        lambda f: (f.path, (f.kind, f.ismn_file))),
                    "mismatch": resolved.mismatches | "Key mismatches" >> beam.Map(
                        lambda path: (path, 1))}
                   | "Group reports by shard" >> beam.CoGroupByKey()
                   | "Shard reports" >> beam.Map(shard_report))
        ismn_provenance = catalogs | "ISMN provenance" >> beam.Map(provenance_of)
        return {"failures": failures, "reports": reports, "ismn_provenance": ismn_provenance}


def provenance_of(cat: CatalogOrError):
    return dict(cat.provenance or {})


