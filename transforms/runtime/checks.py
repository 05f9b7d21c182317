"""Checks a command makes before anything runs: its input shards, an output
that would replace an input, the examples' image size, a writable folder."""

from __future__ import annotations

import tempfile
from typing import List

from transforms.runtime.arguments import check_reachable
from transforms.runtime.errors import InputError, UsageError


def input_shards(pattern: str) -> List[str]:
    """The shards ``--input_data_path`` matches, sorted. None, or a folder
    instead of a glob, is a UsageError; a matched path that cannot be opened
    an InputError."""
    from transforms.dataset import tfrecord_io
    if pattern.startswith("gs://"):
        check_reachable([pattern])
    try:
        return tfrecord_io.match_input_shards(pattern)
    except IsADirectoryError as e:
        raise UsageError(f"--input_data_path {e}") from e
    except FileNotFoundError as e:
        raise UsageError(f"{e}: check --input_data_path") from e
    except tfrecord_io.UnreadableShardError as e:
        raise InputError(str(e)) from e


def is_inside(path: str, folder: str) -> bool:
    """Whether the local ``path`` is the existing folder ``folder`` or lies
    under it (links followed); False for remote paths (``gs://``).

    Args:
        path: an output path.
        folder: an input folder.

    Returns:
        Whether writing ``path`` would write into ``folder``.
    """
    import os

    if "://" in path or "://" in folder or not os.path.isdir(folder):
        return False
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def refuse_overwrite(inputs: List[str], outputs: List[str], input_flag: str,
                     output_flag: str) -> None:
    """Raise UsageError naming both when an input file is one a run would
    write.

    Args:
        inputs: the input files.
        outputs: the run's output paths, where ``*`` stands for any text
            (``/`` included) and every other character is itself: a folder
            named ``site[1]`` is that folder, never a pattern. Local paths
            are compared resolved, links followed.
        input_flag, output_flag: the flags named in the error.

    Raises:
        UsageError: an input is one of the outputs.
    """
    import os
    import re

    def resolved(path: str) -> str:
        if "://" in path:
            return path
        folder, name = os.path.split(os.path.abspath(path))
        return os.path.join(os.path.realpath(folder), name)

    def matcher(pattern: str):
        return re.compile(".*".join(re.escape(part) for part in resolved(pattern).split("*")),
                          re.DOTALL)

    for pattern in outputs:
        output = matcher(pattern)
        for path in inputs:
            real = path if "://" in path else os.path.realpath(path)
            if output.fullmatch(real) or output.fullmatch(resolved(path)):
                raise UsageError(f"{output_flag}: its output {pattern} would replace the input "
                                 f"{path} ({input_flag}): write the outputs elsewhere")


def check_image_size(path: str, image_size: int, trained_on: str = "") -> None:
    """Fail fast (InputError) when the first example of shard ``path`` is not
    ``image_size`` square, naming both sizes and what to do.

    Args:
        path: a shard.
        image_size: the side the run will feed.
        trained_on: where ``image_size`` comes from when it is the model's
            recorded training size (e.g. ``the model m/ was trained on 32x32
            images``): the fix is then another model, not the flag.

    Raises:
        InputError: the first example is of another size.
    """
    from transforms.dataset import keys, tfrecord_io

    try:
        record = next(iter(tfrecord_io.read_shard(path)), None)
        side = None if record is None else keys.image_side(record)
    except (tfrecord_io.CorruptShardError, ValueError):
        return  # reported per record by the run itself
    if side is not None and side != image_size:
        if trained_on:
            raise InputError(f"the examples of {path} are {side}x{side} but {trained_on}: use "
                             f"a model trained on {side}x{side} examples")
        raise InputError(
            f"the examples of {path} are {side}x{side} but --image_size is {image_size}: "
            f"run with --image_size {side}")


def check_writable(folder: str, flag: str) -> None:
    """A local output folder can be created and written (else UsageError
    naming ``flag``); remote ones are checked by the runner when it writes."""
    import os

    if not folder or "://" in folder:
        return
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as e:
        raise UsageError(f"cannot write to {flag} {folder}: {e.strerror or e}") from e
