"""What a command accepts: every flag it or Beam defines, values in range,
valid bucket names, a reachable Cloud Storage (``cli.cli_main`` checks these
before the run starts)."""

from __future__ import annotations

import argparse
import logging
from typing import List

from apache_beam.options.pipeline_options import PipelineOptions

from transforms.runtime.errors import InputError, UsageError


class _OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are a ``UsageError`` (one line),
    never its usage block and ``SystemExit``."""

    def error(self, message):
        raise UsageError(message)


def beam_parser(name: str) -> argparse.ArgumentParser:
    """One parser holding every flag a command accepts: its own options
    classes and Beam's (every ``PipelineOptions`` subclass imported, the
    Flink and Spark runners' included), as Beam itself parses them."""
    import importlib

    for module in ("apache_beam.runners.portability.flink_runner",
                   "apache_beam.runners.portability.spark_runner"):
        try:  # runner options Beam registers only when the runner's module is imported
            importlib.import_module(module)
        except ImportError:  # pragma: no cover - an install without that runner
            pass

    # argparse would print its usage block and exit: one line instead
    parser = _OneLineParser(prog=f"python -m pipelines.{name}", allow_abbrev=False,
                            add_help=False)
    seen = set()
    for cls in PipelineOptions.__subclasses__():
        if str(cls) not in seen:  # as PipelineOptions.get_all_options
            seen.add(str(cls))
            cls._add_argparse_args(parser)
    return parser


def command_parser(name: str, option_classes) -> argparse.ArgumentParser:
    """The parser of a command that builds no Beam pipeline: its own flags
    only, from ``option_classes`` (each with an ``_add_argparse_args(parser)``
    classmethod, as Beam's options classes have, but not a ``PipelineOptions``
    subclass: Beam would then add its flags to every command's parser).

    Args:
        name: the command (``cut_examples``), for the usage line.
        option_classes: the classes that define its flags.

    Returns:
        A parser whose errors (a required flag missing, a value argparse
        refuses) raise ``UsageError``; no ``--help`` of its own
        (``cli.cli_main`` answers it), no abbreviated flags.
    """
    parser = _OneLineParser(prog=f"python -m pipelines.{name}", allow_abbrev=False,
                            add_help=False)
    for cls in option_classes:
        cls._add_argparse_args(parser)
    return parser


def check_arguments(name: str, argv: List[str], parser=None) -> argparse.Namespace:
    """Refuse what the command does not understand (UsageError, one line):
    a flag neither the command nor Beam defines (with the closest flag it
    does define), a value argparse refuses (a choice not offered, a number
    that is not one), and a stray positional argument: most often the second
    file of an unquoted glob the shell expanded.

    Args:
        name: the command.
        argv: its arguments (``-v`` already taken out).
        parser: the parser of a command that builds no Beam pipeline
            (``command_parser``); by default ``beam_parser(name)``: the
            command's flags and Beam's.

    Returns:
        The parsed flags.

    Raises:
        UsageError: naming the flag or argument at fault.
    """
    import difflib

    beam = parser is None
    parser = beam_parser(name) if beam else parser
    # a misspelled flag is named before the flags it leaves missing
    required = [action for action in parser._actions if action.required]
    for action in required:
        action.required = False
    try:
        parsed, unknown = parser.parse_known_args(argv)
    finally:
        for action in required:
            action.required = True
    for arg in unknown:
        if arg.startswith("-"):
            flag = arg.split("=", 1)[0]
            known = ["--help", "--help_beam",
                     *(o for action in parser._actions for o in action.option_strings)]
            close = difflib.get_close_matches(flag, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"unknown flag {flag}{hint}; --help lists the command's flags"
                             + (", --help_beam Beam's" if beam else ""))
        raise UsageError(
            f"unexpected argument {arg!r}: every value follows its flag; a glob must be quoted "
            f"(--input_data_path 'shards/*.tfrecord.gz') or the shell expands it into "
            f"several arguments")
    missing = [action.option_strings[-1] for action in required
               if getattr(parsed, action.dest, None) is None]
    if missing:
        raise UsageError(f"{' and '.join(missing)} required")
    check_values(parsed)
    check_bucket_names(parsed)
    return parsed


_BUCKET = None  # compiled on first use


def check_bucket_names(parsed: argparse.Namespace) -> None:
    """Every ``gs://`` path a flag names has a valid bucket name (3-63
    lower-case letters, digits, ``-``, ``_`` and ``.``, starting and ending
    with a letter or digit), else UsageError: Beam would otherwise spend
    minutes on retries against a bucket that cannot exist."""
    import re

    global _BUCKET
    _BUCKET = _BUCKET or re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
    for flag, value in sorted(vars(parsed).items()):
        for path in value if isinstance(value, list) else [value]:
            if isinstance(path, str) and path.startswith("gs://"):
                bucket = path[len("gs://"):].split("/", 1)[0]
                if not _BUCKET.match(bucket):
                    raise UsageError(f"--{flag} {path}: {bucket!r} is not a valid bucket name "
                                     f"(3-63 lower-case letters, digits, '-', '_' or '.')")


def cloud_paths(parsed: argparse.Namespace, argv: List[str]) -> List[str]:
    """The ``gs://`` paths the flags given in ``argv`` name (Beam's own
    included; a default the run does not use, such as ``--input_data_path``'s
    public bucket beside ``evaluate --predictions``, is left out)."""
    given = {a.split("=", 1)[0][2:] for a in argv if a.startswith("--")}
    found = []
    for flag, value in vars(parsed).items():
        if flag not in given:
            continue
        for path in value if isinstance(value, list) else [value]:
            if isinstance(path, str) and path.startswith("gs://"):
                found.append(path)
    return found


def check_reachable(paths: List[str], timeout: float = 5.0) -> None:
    """Before a run that reads or writes ``gs://`` paths: Cloud Storage
    answers on its port within ``timeout`` seconds, else InputError naming
    the first path (without this, an offline machine waits on retries for
    minutes before failing)."""
    import socket

    global _REACHED
    if not paths or _REACHED:
        return
    host = "storage.googleapis.com"
    logging.getLogger(__name__).info("reaching %s for %s ...", host, paths[0])
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as e:
        raise InputError(f"cannot reach Google Cloud Storage ({host}) for {paths[0]} within "
                         f"{timeout:g} s: {e.strerror or e}; check the network") from e
    _REACHED = True


_REACHED = False  # Cloud Storage answered once in this process


#: The flags a command cannot run without, wherever a command defines them,
#: each with the flags that may stand in for it (``run_inference``'s sample
#: mode needs no ``--output_path``; ``evaluate`` reads shards instead of
#: ``--predictions``). ``--help`` marks them (``cli.pipeline_help``); each
#: flow's settings refuse a run without them (``from_options``), and a
#: command building no Beam pipeline declares its own with argparse's
#: ``required=True``.
REQUIRED_FLAGS = {
    "output_dir": (),
    "ismn_data_path": (),
    "exported_model_dir": (),
    "scene_path": ("stac_api",),
    "output_path": ("num_inference_samples",),
    "predictions": ("input_data_path",),
}


def required_note(action: argparse.Action, defined) -> str:
    """How ``--help`` marks a flag a run cannot do without.

    Args:
        action: the flag's argparse action.
        defined: every flag (``--name``) the command defines.

    Returns:
        ``"required"``, ``"required unless --x is given"`` (only naming
        stand-ins the command defines), or ``""`` for an optional flag.
    """
    if action.required:
        return "required"
    flag = next((o for o in action.option_strings if o.startswith("--")), "")
    if flag[2:] not in REQUIRED_FLAGS:
        return ""
    instead = [f"--{o}" for o in REQUIRED_FLAGS[flag[2:]] if f"--{o}" in defined]
    return "required" + (f" unless {' or '.join(instead)} is given" if instead else "")


def time_ms(flag: str, text: str, earliest_ms: float, latest_ms: float, ends=("", "")) -> float:
    """A time flag's value: Unix milliseconds, or an ISO time (UTC when it
    names no zone: ``2021-06-01T10:30:00Z``, ``2021-06-01T12:30+02:00``,
    ``2021-06-01``), as Unix milliseconds.

    Args:
        flag: the flag, for the error.
        text: its value.
        earliest_ms, latest_ms: the plausible range (both included).
        ends: what each end of the range is, in words, for the error.

    Returns:
        The time in Unix milliseconds.

    Raises:
        UsageError: neither a number nor an ISO time; NaN or infinite; a
            time outside the range, saying when the number looks like
            seconds, microseconds or nanoseconds instead of milliseconds.
    """
    import datetime
    import math
    import re

    def iso(ms: float) -> str:
        return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")

    advice = "give Unix milliseconds (1622543400000) or an ISO time (2021-06-01T10:30:00Z)"
    try:
        value, number = float(text), True
    except ValueError:
        number = False
        try:
            when = datetime.datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", text.strip()))
        except ValueError:
            raise UsageError(f"{flag} {text!r} is neither an ISO time nor Unix milliseconds: "
                             f"{advice}") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        value = when.timestamp() * 1000.0
    if not math.isfinite(value):
        raise UsageError(f"{flag} {text} is not a time: {advice}")
    if earliest_ms <= value <= latest_ms:
        return value
    if number:
        for scale, unit in ((1e3, "seconds"), (1e-3, "microseconds"), (1e-6, "nanoseconds")):
            if earliest_ms <= value * scale <= latest_ms:
                raise UsageError(f"{flag} {text} looks like {unit} ({iso(value * scale)}): "
                                 f"{advice}")
    shown = iso(value) if -6e13 < value < 2.5e14 else "far from any plausible time"
    first, last = (f" ({end})" if end else "" for end in ends)
    raise UsageError(f"{flag} {text} is {shown}, not between {iso(earliest_ms)}{first} and "
                     f"{iso(latest_ms)}{last}: {advice}")


#: The values a run can mean, by flag: (lowest, highest, lowest allowed?,
#: highest allowed?); None: unbounded on that side. Every value must also be
#: finite. A flag a command does not define is not checked.
FLAG_RANGES = {
    "time_tolerance_minutes": (0, None, True, True),
    "num_workers": (1, None, True, True),
    "direct_num_workers": (0, None, True, True),  # Beam: 0 = one per core
    "progress_seconds": (0, None, True, True),
    "tensorflow_threads": (0, None, True, True),  # 0: the default
    "image_size": (1, None, True, True),
    "batch_size": (1, None, True, True),
    "num_inference_samples": (0, None, True, True),
    "num_skip_samples": (0, None, True, True),
    "train_fraction": (0, 1, True, True),
    "validation_fraction": (0, 1, True, True),
    "min_samples_per_sensor": (1, None, True, True),
    "timeseries_sensors": (0, None, True, True),
    "ci_level": (0, 1, False, False),
    "bootstrap_samples": (0, None, True, True),
    "anomaly_window_days": (0, None, False, True),
    "epochs": (1, None, True, True),
    "train_batch_size": (1, None, True, True),
    "learning_rate": (0, None, False, True),
    "patience": (0, None, True, True),
    "shuffle_buffer_mb": (0, None, False, True),
}


def accepted_range(low, high, low_in: bool, high_in: bool) -> str:
    """``FLAG_RANGES`` entry -> words: "0 or more", "between 0 and 1 (both excluded)"."""
    if high is None:
        return f"{low} or more" if low_in else f"more than {low}"
    ends = {(True, True): "both included", (False, False): "both excluded",
            (True, False): f"{high} excluded", (False, True): f"{low} excluded"}
    return f"between {low} and {high} ({ends[(low_in, high_in)]})"


def check_values(parsed: argparse.Namespace) -> None:
    """Raise UsageError naming the first flag of ``FLAG_RANGES`` whose value
    no run can mean (outside its range, NaN or infinite), with its range."""
    import math

    for flag, (low, high, low_in, high_in) in FLAG_RANGES.items():
        value = getattr(parsed, flag, None)
        if value is None or isinstance(value, str):
            continue
        ok = math.isfinite(value) and (value >= low if low_in else value > low)
        if high is not None:
            ok = ok and (value <= high if high_in else value < high)
        if not ok:
            raise UsageError(f"--{flag} must be {accepted_range(low, high, low_in, high_in)}, "
                             f"not {value}")
    train = getattr(parsed, "train_fraction", None)
    validation = getattr(parsed, "validation_fraction", None)
    if train is not None and validation is not None and train + validation > 1:
        raise UsageError(f"--train_fraction + --validation_fraction must be at most 1, not "
                         f"{train} + {validation}")
