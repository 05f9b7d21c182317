"""How every command runs: its command line (``cli``) and its runner (``runner``).

``cli``: ``--help``, exit statuses, quiet logs. ``runner``: the options every
pipeline shares, the network-free local runner, dry runs, counters, the
progress lines of local runs.
"""

from transforms.runtime.cli import InputError, UsageError, cli_main, exit_process, pipeline_help
from transforms.runtime.runner import (LOCAL_RUNNER, OutputDirOptions, ProgressOptions,
                                       ShardInputOptions, Stopwatch, add_shared_argument,
                                       apply_local_defaults, check_image_size, check_writable, counters, input_shards,
                                       is_dry_run, is_local, local_progress, output_dir_of,
                                       project_version, refuse_overwrite, run_pipeline,
                                       threads_per_local_worker)

__all__ = ["InputError", "LOCAL_RUNNER", "OutputDirOptions", "ProgressOptions",
           "ShardInputOptions", "Stopwatch", "UsageError", "add_shared_argument",
           "apply_local_defaults", "check_image_size", "check_writable", "cli_main", "counters", "exit_process",
           "input_shards",
           "is_dry_run", "is_local", "local_progress", "output_dir_of", "pipeline_help",
           "project_version", "refuse_overwrite", "run_pipeline", "threads_per_local_worker"]
