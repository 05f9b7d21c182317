"""The ISMN label merge (``pipelines.combine_ismn_data``): one module per step.

``pipeline.MergeIsmnLabels`` wires them: ``scan`` (walk the shards) ->
``match`` (catalog, station/sensor rules, window rule) -> ``rewrite`` (write
merged shards), with ``accounting`` adding up every record. ``config``
holds the settings (``MergeConfig``, one field per flag), ``job`` runs the
whole merge (``run_merge``: checks, pipeline, summary) and ``summary`` adds
up a run (``summarise``, its printed lines, ``exit_code``). The released
script's rules are plain functions in ``rules`` (matching) and
``ismn_files`` (reading an ISMN download).
"""

from transforms.merge.accounting import COUNTERS, FAILURE_KINDS, NAMESPACE
from transforms.merge.config import MergeConfig
from transforms.merge.job import build, check_inputs, run_merge
from transforms.merge.pipeline import MergeIsmnLabels
from transforms.merge.rewrite import plan_outputs, rewrite_shard, same_file
from transforms.merge.scan import classify_record
from transforms.merge.summary import exit_code, stale_outputs, summarise, summary_lines

__all__ = ["COUNTERS", "FAILURE_KINDS", "MergeConfig", "MergeIsmnLabels", "NAMESPACE", "build",
           "check_inputs", "classify_record", "exit_code", "plan_outputs", "rewrite_shard",
           "run_merge", "same_file", "stale_outputs", "summarise", "summary_lines"]
