"""How every command runs, one job a module.

``cli``: ``--help``, exit statuses, quiet logs; ``arguments``: what a command
accepts (flags, ranges, bucket names, a reachable Cloud Storage);
``interrupt``: Ctrl-C; ``errors``: the two one-line errors; ``options``: the
flags several commands share; ``settings``: a flow's settings object from
the flags; ``checks``: what is checked before a run; ``runner``: the
network-free local runner, dry runs, progress, counters.
"""

from transforms.runtime.checks import (check_image_size, check_writable, input_shards,
                                       is_inside, refuse_overwrite)
from transforms.runtime.cli import cli_main, exit_process, pipeline_help, plural
from transforms.runtime.errors import InputError, UsageError
from transforms.runtime.options import (PUBLIC_SHARDS, OutputDirOptions, ProgressOptions,
                                        ShardInputOptions, add_image_size_argument,
                                        add_ismn_arguments, add_model_arguments,
                                        add_report_arguments, add_shared_argument,
                                        add_split_fraction_arguments, output_dir_of)
from transforms.runtime.runner import (LOCAL_RUNNER, Stopwatch, apply_local_defaults, counters,
                                       is_dry_run, is_local, local_progress, project_version,
                                       remote_gpu, run_pipeline, threads_per_local_worker)

__all__ = ["InputError", "LOCAL_RUNNER", "OutputDirOptions", "PUBLIC_SHARDS", "ProgressOptions",
           "ShardInputOptions", "Stopwatch", "UsageError", "add_image_size_argument",
           "add_ismn_arguments", "add_model_arguments", "add_report_arguments",
           "add_shared_argument", "add_split_fraction_arguments",
           "apply_local_defaults", "check_image_size", "check_writable", "cli_main", "counters",
           "exit_process", "input_shards", "is_dry_run", "is_inside", "is_local", "local_progress",
           "output_dir_of", "pipeline_help", "plural", "project_version", "refuse_overwrite",
           "remote_gpu",
           "run_pipeline", "threads_per_local_worker"]
