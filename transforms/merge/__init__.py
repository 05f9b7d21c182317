"""merge"""

from transforms.merge.pipeline import (  # noqa: F401
    FAILURE_KINDS,
    MergeIsmnLabels,
    NAMESPACE,
    RewriteShardFn,
    classify_record,
    plan_outputs,
    rewrite_shard,
    to_json_line,
)
