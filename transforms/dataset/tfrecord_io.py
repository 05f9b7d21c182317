"""Gzipped TFRecord shard reading and atomic writing, with precise errors.

The TFRecord framing is ``uint64 length | uint32 masked_crc32c(length) | data |
uint32 masked_crc32c(data)`` (little endian). We read and write it ourselves
instead of through ``tf.data`` or Beam's ``ReadFromTFRecord`` because the
pipelines need, per record, its index in the shard and, on failure, which
shard and record broke and why; and because writes must be atomic.

Paths go through Beam's ``FileSystems``, so ``gs://`` (and any other Beam
filesystem) works the same as local paths. gzip goes through ``zlib-ng``
(``zlib_ng.gzip_ng``, a drop-in for the standard ``gzip`` module) and, to
read, ISA-L (``isal``; see ``inflate``): standard gzip streams, faster than the
standard zlib at the same level (``benchmarks/combine_benchmark.py``). Output
uses level 6, as TensorFlow's ``TFRecordWriter(options="GZIP")``, a zero mtime
and no file name in the header, so the same records give the same bytes.
"""

from __future__ import annotations

import collections
import io
import logging
import struct
import uuid
import zlib
from typing import BinaryIO, Callable, Iterable, Iterator, List, Optional

import apache_beam as beam
import google_crc32c
from isal import isal_zlib
from zlib_ng import gzip_ng, zlib_ng
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

GZIP_LEVEL = 6
_WRITE_BUFFER = 4 << 20
_COMPRESSED_CHUNK = 1 << 20
_RECOVERY_PIECE = 4096
_MAX_OUTPUT = 16 << 20
_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_LOG = logging.getLogger(__name__)
_FOOTER = struct.Struct("<I")


class CorruptShardError(Exception):
    """A shard could not be read to its end.

    ``records_read`` records before ``index`` were read successfully.
    """

    def __init__(self, path: str, index: int, reason: str):
        super().__init__(f"{path}: record {index}: {reason}")
        self.path = path
        self.index = index
        self.reason = reason


def masked_crc32c(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def encode_record(data: bytes) -> bytes:
    """One TFRecord frame holding ``data``."""
    length = struct.pack("<Q", len(data))
    return b"".join((length, _FOOTER.pack(masked_crc32c(length)), data,
                     _FOOTER.pack(masked_crc32c(data))))


def iter_records(chunks: Iterable[bytes], path: str = "<stream>") -> Iterator[bytes]:
    """Yield the records framed in ``chunks`` (decompressed bytes), checking every CRC.

    Raises CorruptShardError naming ``path`` and the index of the first record
    that could not be read whole: a truncated frame, a CRC mismatch, or a
    ``GzipStreamError`` raised by ``chunks`` (every record that arrived whole
    before it has been yielded).

    The chunks are kept as they come and each record is cut from them with
    one copy (a join of the pieces it spans), so a 10-30 MB record costs one
    pass over its bytes besides its CRC.
    """
    pending: collections.deque = collections.deque()  # unread chunks, the first from ``head``
    head, available, index = 0, 0, 0
    chunks = iter(chunks)

    def fill(n: int) -> bool:
        """At least ``n`` unread bytes; False at the end of the stream."""
        nonlocal available
        while available < n:
            try:
                chunk = next(chunks, None)
            except GzipStreamError as e:
                raise CorruptShardError(path, index, f"gzip stream error: {e}") from e
            if chunk is None:
                return False
            if chunk:
                pending.append(chunk)
                available += len(chunk)
        return True

    def take(n: int) -> bytes:
        """The next ``n`` unread bytes (``fill(n)`` was True)."""
        nonlocal head, available
        pieces = []
        need = n
        while need:
            chunk = pending[0]
            piece = memoryview(chunk)[head:head + need]
            pieces.append(piece)
            need -= len(piece)
            head += len(piece)
            if head == len(chunk):
                pending.popleft()
                head = 0
        available -= n
        if len(pieces) == 1 and isinstance(pieces[0].obj, bytes) and len(pieces[0]) == len(pieces[0].obj):
            return pieces[0].obj  # a whole chunk: no copy
        return b"".join(pieces)

    while True:
        if not fill(12):
            if available:
                raise CorruptShardError(path, index, "truncated record header")
            return
        header = take(12)
        length, length_crc = _HEADER.unpack(header)
        if masked_crc32c(header[:8]) != length_crc:
            raise CorruptShardError(path, index, "length CRC mismatch (corrupt record)")
        if not fill(length + 4):
            raise CorruptShardError(path, index, "truncated record")
        data = take(length)
        (data_crc,) = _FOOTER.unpack(take(4))
        if masked_crc32c(data) != data_crc:
            raise CorruptShardError(path, index, "data CRC mismatch (corrupt record)")
        yield data
        index += 1


class GzipStreamError(Exception):
    """The gzip stream is damaged; every byte before the damage was delivered."""


_ZLIB_ERRORS = (zlib.error, zlib_ng.error)


def _feed(d, data: bytes, out: List[bytes], salvage: bool = True):
    """Inflate ``data`` with decompressor ``d`` into ``out`` (at most 16 MB a call).

    Returns ``(d, rest, error)``: the decompressor to continue with, the input
    after the end of the gzip member (when it ended) and the zlib error, if
    any. On an error, everything that inflated before the damage is in ``out``.
    Without ``salvage`` (ISA-L's decompressor, which cannot copy its state) an
    error raises _FastPathFailed instead.
    """
    while True:
        saved = d.copy() if salvage else None
        try:
            chunk = d.decompress(data, _MAX_OUTPUT)
        except _ZLIB_ERRORS:
            return saved, b"", _salvage(saved, data, out)
        except isal_zlib.error as e:
            raise _FastPathFailed(str(e)) from e
        out.append(chunk)
        if d.eof:
            return d, d.unused_data, None
        data = d.unconsumed_tail
        if not data and len(chunk) < _MAX_OUTPUT:
            return d, b"", None


def _salvage(d, data: bytes, out: List[bytes]) -> Exception:
    """After a call of ``d.decompress(data)`` failed (``d``: the state before
    it), put into ``out`` everything that inflates before the damage and
    return the error.

    zlib discards the output of a call that fails, so the input is fed again
    in 4 KB pieces, and the failing piece byte by byte. (zlib stops at the end
    of a gzip member, so the damage lies before it: the replay cannot reach
    the member's end first.)
    """
    for size in (_RECOVERY_PIECE, 1):
        for pos in range(0, len(data), size):
            before = d.copy()
            try:
                out.append(d.decompress(data[pos:pos + size]))
            except _ZLIB_ERRORS as e:
                if size == 1:
                    return e
                d, data = before, data[pos:pos + size]
                break
    raise AssertionError("zlib failed once and not again on the same bytes")  # pragma: no cover


class _FastPathFailed(Exception):
    """ISA-L met damaged data: the stream is inflated again by zlib-ng, which salvages."""


def inflate(raw: BinaryIO, on_read: Optional[Callable[[int], None]] = None) -> Iterator[bytes]:
    """Decompressed chunks of the (possibly multi-member) gzip stream ``raw``.

    ``on_read(n)``, if given, is told the compressed bytes read so far after
    each read (for progress reports).

    Raises GzipStreamError after yielding all that inflated, for a damaged
    stream (bad header, bad deflate data, wrong CRC or length in a trailer)
    or one that ends inside a member. Zero padding after a member is ignored,
    as Python's ``gzip`` does.

    ISA-L (``isal``) inflates, 15-20 % faster than zlib-ng here; it cannot
    copy its state, so on damaged data the stream is read again from its
    start with zlib-ng (``_feed``'s salvage), the bytes already delivered
    skipped: the same output and the same error as zlib-ng alone.
    """
    delivered = 0
    try:
        for chunk in _inflate(raw, on_read, fast=True):
            delivered += len(chunk)
            yield chunk
        return
    except _FastPathFailed as e:
        try:
            raw.seek(0)
        except (OSError, ValueError, io.UnsupportedOperation):
            raise GzipStreamError(str(e)) from e
    for chunk in _inflate(raw, on_read, fast=False):
        if delivered >= len(chunk):
            delivered -= len(chunk)
            continue
        yield chunk[delivered:] if delivered else chunk
        delivered = 0


def _inflate(raw: BinaryIO, on_read: Optional[Callable[[int], None]], fast: bool) -> Iterator[bytes]:
    """``inflate`` with ISA-L (``fast``: raises _FastPathFailed on damaged
    data) or with zlib-ng and its salvage."""
    module = isal_zlib if fast else zlib_ng
    d, in_member, consumed = module.decompressobj(31), False, 0
    while True:
        pending = raw.read(_COMPRESSED_CHUNK)
        if not pending:
            break
        consumed += len(pending)
        if on_read is not None:
            on_read(consumed)
        while pending:
            if not in_member:
                pending = pending.lstrip(b"\0")
                if not pending:
                    break
            in_member, out = True, []
            d, rest, error = _feed(d, pending, out, salvage=not fast)
            for chunk in out:
                if chunk:
                    yield chunk
            if error is not None:
                raise GzipStreamError(str(error))
            pending = b""
            if d.eof:
                d, in_member, pending = module.decompressobj(31), False, rest
    if in_member:
        raise GzipStreamError("the file ends inside a gzip member (truncated)")


def read_shard(path: str, on_read: Optional[Callable[[int], None]] = None) -> Iterator[bytes]:
    """Records of a gzipped TFRecord shard (see ``iter_records`` for errors;
    ``on_read`` as in ``inflate``)."""
    try:
        raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    except OSError as e:
        raise CorruptShardError(path, 0, f"cannot open: {e}") from e
    with raw:
        yield from iter_records(inflate(raw, on_read), path)


class AtomicShardWriter:
    """Writes a gzipped TFRecord shard under a temporary name, renamed on ``close``.

    A crash (or ``abort``) never leaves a truncated file under the final name;
    an existing file of that name is replaced only when the new one is complete.
    Use as a context manager: leaving it with an exception aborts.
    """

    def __init__(self, path: str, compresslevel: int = GZIP_LEVEL):
        self.path = path
        self.temp_path = f"{path}.tmp-{uuid.uuid4().hex}"
        self._raw = FileSystems.create(self.temp_path,
                                       compression_type=CompressionTypes.UNCOMPRESSED)
        self._gz = gzip_ng.GzipFile(filename="", mode="wb", compresslevel=compresslevel,
                                    fileobj=self._raw, mtime=0)
        self._out = io.BufferedWriter(self._gz, _WRITE_BUFFER)
        self.count = 0
        self.closed = False

    def write(self, record: bytes) -> None:
        try:
            self._out.write(encode_record(record))
        except OSError as e:  # a full disk, a file-size limit: name the file being written
            raise OSError(e.errno, f"{e.strerror or e} while writing {self.path}") from e
        self.count += 1

    def write_all(self, records: Iterable[bytes]) -> None:
        for record in records:
            self.write(record)

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._out.close()  # flushes into and closes the GzipFile
            self._raw.close()
        except OSError as e:
            raise OSError(e.errno, f"{e.strerror or e} while writing {self.path}") from e
        self.closed = True
        # Local: os.rename replaces atomically. GCS: copy then delete, and an
        # object is only ever visible complete.
        FileSystems.rename([self.temp_path], [self.path])

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        for closer in (self._out.close, self._raw.close):
            try:
                closer()
            except Exception:  # already broken; the temp file is removed below
                pass
        try:
            FileSystems.delete([self.temp_path])
        except Exception as e:  # pragma: no cover - best effort cleanup
            _LOG.warning("could not remove %s: %s", self.temp_path, e)

    def __enter__(self) -> "AtomicShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_shard(path: str, records: Iterable[bytes]) -> int:
    """Write ``records`` atomically to ``path``; returns how many were written."""
    with AtomicShardWriter(path) as writer:
        writer.write_all(records)
        return writer.count


def shard_name(index: int, num_shards: int, prefix: str = "data") -> str:
    """``data-00000-of-00500.tfrecord.gz``: the released naming."""
    return f"{prefix}-{index:05d}-of-{num_shards:05d}.tfrecord.gz"



class UnreadableShardError(Exception):
    """A matched path that cannot be opened (a dangling link, a folder, no read permission)."""


def match_input_shards(pattern: str) -> List[str]:
    """Paths matching ``pattern``, sorted. Raises FileNotFoundError naming the
    pattern if none match, IsADirectoryError
    when it is a folder, not a glob, and UnreadableShardError naming a matched
    path that cannot be opened (Beam's local match drops dangling links silently).
    """
    import glob
    import os

    paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    if "://" not in pattern:
        if os.path.isdir(pattern):
            raise IsADirectoryError(
                f"{pattern} is a folder: give a glob of its shards, e.g. "
                f"'{os.path.join(pattern, '*.tfrecord.gz')}'")
        for path in sorted(set(glob.glob(pattern)) | set(paths)):
            problem = ("is a folder" if os.path.isdir(path) else
                       "is a link to nothing (dangling or looping)" if not os.path.exists(path)
                       else None if os.access(path, os.R_OK) else "cannot be read")
            if problem:
                raise UnreadableShardError(f"input shard {path} (matched by {pattern}) {problem}")
    if not paths:
        raise FileNotFoundError(f"no input shards match {pattern}")
    return paths


class MatchShards(beam.PTransform):
    """Pipeline start -> the sorted shard paths matching ``pattern``.

    The match runs inside the pipeline (on a worker), never while the
    pipeline is built, so building a Dataflow job touches no ``gs://`` path.
    """

    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = pattern

    def expand(self, pbegin):
        return (pbegin
                | "Input pattern" >> beam.Create([self.pattern])
                | "Match" >> beam.FlatMap(match_input_shards))
