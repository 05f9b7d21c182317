"""evaluation"""

from transforms.evaluation.pipeline import (  # noqa: F401
    CheckRowsFn,
    Evaluate,
    PairStats,
    PairStatsFn,
    SPLITS,
    SplitConfig,
    header_problem,
    parse_csv_readable,
    read_split_file,
    sensor_split,
    shard_rows,
)
