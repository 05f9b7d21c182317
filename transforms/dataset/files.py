"""Writing outputs atomically (temporary name, then rename) and reading them back.

Every file a pipeline writes goes through ``write_bytes_atomically`` (or
``tfrecord_io.AtomicShardWriter`` for shards): a reader never sees a
half-written file, and ``remove_stale_temporaries`` clears what killed
attempts left behind.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Dict, List

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

_LOG = logging.getLogger(__name__)


def write_bytes_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary name and a rename."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)
    FileSystems.rename([tmp], [path])


def write_json_atomically(path: str, payload) -> None:
    write_bytes_atomically(path, json.dumps(payload, indent=2, sort_keys=True).encode())


def remove_outputs(paths: List[str]) -> List[str]:
    """Delete the files of ``paths`` that exist: a command's own outputs of
    an earlier run, which a failed run must not leave beside its own
    outcome (they would pass for its result).

    Args:
        paths: output paths (local or remote).

    Returns:
        The paths deleted.
    """
    from apache_beam.io.filesystems import FileSystems

    found = [p for p in paths if FileSystems.exists(p)]
    if found:
        FileSystems.delete(found)
    return found


def replace_file(src: str, dst: str) -> None:
    """Rename ``src`` to ``dst``, replacing it (one ``os.replace`` locally;
    Beam's rename, a copy and a delete, on ``gs://``)."""
    import os

    FileSystems.rename([src], [dst]) if "://" in dst else os.replace(src, dst)


def read_json(path: str):
    """The JSON document at ``path`` (local or any Beam filesystem)."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return json.load(f)


def read_json_lines(path: str) -> List[dict]:
    if not FileSystems.exists(path):
        return []
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]


def remove_stale_temporaries(output_dir: str, prefix: str = "") -> None:
    """Delete what crashed, killed or interrupted attempts left in
    ``output_dir``: the ``*.tmp-*`` files of our atomic writers and the
    ``beam-temp-*`` folders of Beam's file sinks, of outputs whose names
    start with ``prefix`` (every output of the folder when empty).

    Only when no run is writing there: after a successful run every final
    file has been renamed into place, so what is left is debris from
    attempts that died mid-write.
    """
    import os
    import shutil

    patterns = [FileSystems.join(output_dir, p) for p in (
        f"{prefix}*.tmp-*", f"beam-temp-{prefix}*/*")]
    stale = [m.path for found in FileSystems.match(patterns) for m in found.metadata_list]
    if stale:
        _LOG.info("removing %d temporary files left by failed attempts: %s", len(stale), stale)
        FileSystems.delete(stale)
    if "://" not in output_dir and os.path.isdir(output_dir):  # local folders outlive their files
        for entry in os.listdir(output_dir):
            if entry.startswith(f"beam-temp-{prefix}"):
                shutil.rmtree(os.path.join(output_dir, entry), ignore_errors=True)


def to_json_line(record: Dict[str, object]) -> str:
    return json.dumps(record, sort_keys=True)
