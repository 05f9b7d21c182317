"""The ISMN label merge (``pipelines.combine_ismn_data``): one module per step.

``pipeline.MergeIsmnLabels`` wires them: ``scan`` (walk the shards) ->
``match`` (catalog, station/sensor rules, window rule) -> ``rewrite`` (write
merged shards), with ``accounting`` adding up every record. The released
script's rules are plain functions in ``rules`` (matching) and
``ismn_files`` (reading an ISMN download).
"""

from transforms.merge.accounting import COUNTERS, FAILURE_KINDS, NAMESPACE
from transforms.merge.pipeline import MergeIsmnLabels
from transforms.merge.rewrite import plan_outputs, rewrite_shard, same_file
from transforms.merge.scan import classify_record

__all__ = ["COUNTERS", "FAILURE_KINDS", "MergeIsmnLabels", "NAMESPACE", "classify_record", "plan_outputs",
           "rewrite_shard", "same_file"]
