import gzip
import os

import pytest
import tensorflow as tf

from transforms.dataset import tfrecord_io


def _records(n):
    return [f"record-{i}".encode() * (i + 1) for i in range(n)]


def test_round_trip_is_readable_by_tensorflow(tmp_path):
    path = str(tmp_path / "data-00000-of-00001.tfrecord.gz")
    assert tfrecord_io.write_shard(path, _records(5)) == 5
    assert list(tfrecord_io.read_shard(path)) == _records(5)
    tf_read = [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]
    assert tf_read == _records(5)
    assert os.listdir(tmp_path) == ["data-00000-of-00001.tfrecord.gz"]


def test_reads_tensorflow_written_shards(tmp_path):
    path = str(tmp_path / "tf.tfrecord.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as w:
        for r in _records(4):
            w.write(r)
    assert list(tfrecord_io.read_shard(path)) == _records(4)


def test_same_records_same_bytes(tmp_path):
    a, b = str(tmp_path / "a.gz"), str(tmp_path / "b.gz")
    tfrecord_io.write_shard(a, _records(3))
    tfrecord_io.write_shard(b, _records(3))
    assert open(a, "rb").read() == open(b, "rb").read()


def _raw(path):
    with gzip.open(path, "rb") as f:
        return f.read()


def _write_raw(path, data):
    with gzip.open(path, "wb") as f:
        f.write(data)


def test_data_crc_mismatch_names_file_and_record(tmp_path):
    path = str(tmp_path / "s.gz")
    tfrecord_io.write_shard(path, _records(3))
    raw = bytearray(_raw(path))
    first = 12 + len(_records(3)[0]) + 4
    raw[first + 12] ^= 0xFF  # first data byte of record 1
    _write_raw(path, bytes(raw))
    it = tfrecord_io.read_shard(path)
    assert next(it) == _records(3)[0]
    with pytest.raises(tfrecord_io.CorruptShardError, match=r"s.gz: record 1: data CRC") as e:
        next(it)
    assert e.value.index == 1 and e.value.path == path


def test_truncated_record(tmp_path):
    path = str(tmp_path / "s.gz")
    tfrecord_io.write_shard(path, _records(3))
    _write_raw(path, _raw(path)[:-5])
    with pytest.raises(tfrecord_io.CorruptShardError, match="record 2: truncated"):
        list(tfrecord_io.read_shard(path))


def test_truncated_gzip(tmp_path):
    path = str(tmp_path / "s.gz")
    tfrecord_io.write_shard(path, _records(50))
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(tfrecord_io.CorruptShardError, match="gzip stream error"):
        list(tfrecord_io.read_shard(path))


def test_not_gzip(tmp_path):
    path = str(tmp_path / "s.gz")
    open(path, "wb").write(b"this is not gzip at all")
    with pytest.raises(tfrecord_io.CorruptShardError, match="record 0: gzip stream error"):
        list(tfrecord_io.read_shard(path))


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.gz")
    with pytest.raises(tfrecord_io.CorruptShardError, match="cannot open") as e:
        list(tfrecord_io.read_shard(path))
    assert (e.value.path, e.value.index) == (path, 0)
    assert e.value.reason.startswith("cannot open: ")


def test_atomic_writer_abort_leaves_nothing_and_keeps_old(tmp_path):
    path = str(tmp_path / "out.gz")
    tfrecord_io.write_shard(path, [b"old"])
    with pytest.raises(RuntimeError):
        with tfrecord_io.AtomicShardWriter(path) as w:
            w.write(b"new")
            raise RuntimeError("worker died")
    assert os.listdir(tmp_path) == ["out.gz"]
    assert list(tfrecord_io.read_shard(path)) == [b"old"]


def test_atomic_writer_invisible_until_closed(tmp_path):
    path = str(tmp_path / "out.gz")
    w = tfrecord_io.AtomicShardWriter(path)
    w.write(b"x")
    assert not os.path.exists(path)
    w.close()
    assert list(tfrecord_io.read_shard(path)) == [b"x"]


def test_shard_name():
    assert tfrecord_io.shard_name(7, 500) == "data-00007-of-00500.tfrecord.gz"


def _incompressible_records(n, size=90_000, seed=0):
    """Records that gzip barely shrinks, so a cut lands after many whole records."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=size, dtype=np.uint8).tobytes() for _ in range(n)]


def _tf_readable(path):
    """The records TensorFlow's own GZIP reader delivers before its error (the oracle)."""
    out = []
    try:
        for r in tf.data.TFRecordDataset(path, compression_type="GZIP"):
            out.append(r.numpy())
    except (tf.errors.DataLossError, tf.errors.OutOfRangeError):
        pass
    return out


def _damage(raw: bytes, how: str) -> bytes:
    if how == "cut_at_80_percent":
        return raw[:int(len(raw) * 0.8)]
    if how == "gzip_trailer_crc":
        return raw[:-8] + bytes(b ^ 0xFF for b in raw[-8:-4]) + raw[-4:]
    if how == "gzip_trailer_length":
        return raw[:-4] + b"\x01\x00\x00\x00"
    if how == "deflate_bit_flip":
        mid = len(raw) // 2
        return raw[:mid] + bytes([raw[mid] ^ 0x10]) + raw[mid + 1:]
    raise ValueError(how)


@pytest.mark.parametrize("how", ["cut_at_80_percent", "gzip_trailer_crc", "gzip_trailer_length",
                                 "deflate_bit_flip"])
def test_damaged_gzip_keeps_every_record_tensorflow_can_read(tmp_path, how):
    records = _incompressible_records(100)
    good = str(tmp_path / "good.tfrecord.gz")
    # a damaged trailer leaves every record intact: all 100 must come out
    tfrecord_io.write_shard(good, records)
    path = str(tmp_path / f"{how}.tfrecord.gz")
    with open(good, "rb") as f:
        damaged = _damage(f.read(), how)
    with open(path, "wb") as f:
        f.write(damaged)
    tf_records = _tf_readable(path)
    got = []
    with pytest.raises(tfrecord_io.CorruptShardError) as e:
        for r in tfrecord_io.read_shard(path):
            got.append(r)
    assert got == records[:len(got)]  # only intact records, in order
    assert len(got) >= len(tf_records) > 0  # nothing TensorFlow reads is lost
    assert e.value.index == len(got)  # the failure names the first record not read
    assert e.value.path == path
    if how.startswith("gzip_trailer"):
        assert len(got) == 100
        assert e.value.reason.startswith("gzip stream error: Error -3 while decompressing data: "
                                         "incorrect ")


def test_cut_shard_yields_every_whole_record(tmp_path):
    """A cut right after a record boundary loses nothing before it."""
    records = _incompressible_records(20, size=5000)
    path = str(tmp_path / "s.gz")
    tfrecord_io.write_shard(path, records)
    with open(path, "rb") as f:
        raw = f.read()
    with open(path, "wb") as f:
        f.write(raw[:-8])  # the whole deflate stream, no trailer
    got = []
    with pytest.raises(tfrecord_io.CorruptShardError, match="record 20: gzip stream error"):
        got.extend(tfrecord_io.read_shard(path))
    assert got == records


def test_zero_padding_after_the_gzip_member_is_ignored(tmp_path):
    path = str(tmp_path / "s.gz")
    tfrecord_io.write_shard(path, _records(3))
    with open(path, "ab") as f:
        f.write(b"\0" * 16)
    assert list(tfrecord_io.read_shard(path)) == _records(3)


def test_concatenated_gzip_members_read_as_one_shard(tmp_path):
    a, b = str(tmp_path / "a.gz"), str(tmp_path / "b.gz")
    tfrecord_io.write_shard(a, _records(3))
    tfrecord_io.write_shard(b, _records(2))
    both = str(tmp_path / "ab.gz")
    with open(both, "wb") as f:
        f.write(open(a, "rb").read() + open(b, "rb").read())
    assert list(tfrecord_io.read_shard(both)) == _records(3) + _records(2)
    assert [r.numpy() for r in tf.data.TFRecordDataset(both, "GZIP")] == _records(3) + _records(2)


def test_records_larger_than_one_inflate_call_and_many_chunks(tmp_path):
    """A 40 MB record of zeros inflates from a few KB: more than the 16 MB one
    zlib call may return, so the loop must carry on within one chunk."""
    big = bytes(40 << 20)
    records = [b"head", big, b"tail" * 1000, big[:17 << 20] + b"\x01"]
    path = str(tmp_path / "big.gz")
    tfrecord_io.write_shard(path, records)
    assert os.path.getsize(path) < 1 << 20
    assert list(tfrecord_io.read_shard(path)) == records


def test_on_read_is_told_the_compressed_bytes_read(tmp_path):
    records = _incompressible_records(30, size=100_000)  # 3 MB: several 1 MB reads
    path = str(tmp_path / "s.gz")
    tfrecord_io.write_shard(path, records)
    seen = []
    assert list(tfrecord_io.read_shard(path, seen.append)) == records
    assert seen == sorted(seen) and len(seen) >= 3
    assert seen[-1] == os.path.getsize(path)


@pytest.mark.parametrize("cut,message", [
    (5, "record 2: truncated record"),
    (len(b"record-2" * 3) + 4 + 6, "record 2: truncated record header"),
])
def test_truncations_inside_the_framing_name_the_record(tmp_path, cut, message):
    path = str(tmp_path / "s.gz")
    tfrecord_io.write_shard(path, _records(3))
    _write_raw(path, _raw(path)[:-cut])
    with pytest.raises(tfrecord_io.CorruptShardError) as e:
        list(tfrecord_io.read_shard(path))
    assert str(e.value) == f"{path}: {message}"


def test_length_crc_mismatch_and_gzip_messages(tmp_path):
    path = str(tmp_path / "s.gz")
    tfrecord_io.write_shard(path, _records(2))
    raw = bytearray(_raw(path))
    raw[len(_records(2)[0]) + 16 + 9] ^= 1  # record 1's length CRC
    _write_raw(path, bytes(raw))
    with pytest.raises(tfrecord_io.CorruptShardError) as e:
        list(tfrecord_io.read_shard(path))
    assert str(e.value) == f"{path}: record 1: length CRC mismatch (corrupt record)"
    good = str(tmp_path / "g.gz")
    tfrecord_io.write_shard(good, _records(2))
    with open(good, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:-8])
    with pytest.raises(tfrecord_io.CorruptShardError) as e:
        list(tfrecord_io.read_shard(path))
    assert str(e.value) == (f"{path}: record 2: gzip stream error: the file ends inside a "
                            f"gzip member (truncated)")


def test_encode_record_is_tensorflows_framing(tmp_path):
    path = str(tmp_path / "tf.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for r in _records(3) + [b""]:
            w.write(r)
    with open(path, "rb") as f:
        assert f.read() == b"".join(tfrecord_io.encode_record(r) for r in _records(3) + [b""])


def test_match_input_shards_sorted_and_clear_when_none(tmp_path):
    for name in ("b.gz", "a.gz", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    assert tfrecord_io.match_input_shards(str(tmp_path / "*.gz")) == [
        str(tmp_path / "a.gz"), str(tmp_path / "b.gz")]
    with pytest.raises(FileNotFoundError, match=r"no input shards match .*/\*\.none"):
        tfrecord_io.match_input_shards(str(tmp_path / "*.none"))


def test_empty_file_is_an_empty_shard_and_a_bare_header_is_truncated(tmp_path):
    empty = tmp_path / "e.gz"
    empty.write_bytes(b"")
    assert list(tfrecord_io.read_shard(str(empty))) == []
    assert [r for r in tf.data.TFRecordDataset(str(empty), "GZIP")] == []
    path = str(tmp_path / "h.gz")
    _write_raw(path, tfrecord_io.encode_record(b"abc")[:12])  # a header, nothing after it
    with pytest.raises(tfrecord_io.CorruptShardError, match="record 0: truncated record$"):
        list(tfrecord_io.read_shard(path))


def test_zero_padding_between_members_and_a_zlib_stream(tmp_path):
    import zlib

    a, b = str(tmp_path / "a.gz"), str(tmp_path / "b.gz")
    tfrecord_io.write_shard(a, _records(2))
    tfrecord_io.write_shard(b, _records(3))
    both = tmp_path / "ab.gz"
    both.write_bytes(open(a, "rb").read() + b"\0" * 7 + open(b, "rb").read())
    assert list(tfrecord_io.read_shard(str(both))) == _records(2) + _records(3)
    raw_zlib = tmp_path / "z.gz"  # zlib-wrapped, not gzip: not a shard
    raw_zlib.write_bytes(zlib.compress(b"".join(tfrecord_io.encode_record(r) for r in _records(2))))
    with pytest.raises(tfrecord_io.CorruptShardError, match="record 0: gzip stream error"):
        list(tfrecord_io.read_shard(str(raw_zlib)))


def test_written_shards_are_reproducible_gzip_level_6(tmp_path):
    path = str(tmp_path / "s.gz")
    tfrecord_io.write_shard(path, _incompressible_records(2, size=1000))
    header = open(path, "rb").read(10)
    assert header[:3] == b"\x1f\x8b\x08"  # gzip, deflate
    assert header[3] == 0  # no file name
    assert header[4:8] == b"\0\0\0\0"  # mtime 0: same records, same bytes
    assert header[8] == 0  # XFL 0: level 6 (2 would be level 9, 4 level 1)


def test_writer_close_and_abort_are_idempotent(tmp_path):
    path = str(tmp_path / "s.gz")
    w = tfrecord_io.AtomicShardWriter(path)
    w.write_all([b"a", b"b"])
    w.close()
    w.close()
    w.abort()  # after close: keeps the file
    assert list(tfrecord_io.read_shard(path)) == [b"a", b"b"] and w.count == 2
    w2 = tfrecord_io.AtomicShardWriter(str(tmp_path / "t.gz"))
    w2.abort()
    w2.abort()
    w2.close()  # after abort: writes nothing
    assert sorted(os.listdir(tmp_path)) == ["s.gz"]


def test_match_shards_in_a_pipeline(tmp_path):
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from transforms import runtime

    for name in ("b.gz", "a.gz"):
        (tmp_path / name).write_bytes(b"")
    with TestPipeline(runner=runtime.LOCAL_RUNNER) as p:
        paths = p | tfrecord_io.MatchShards(str(tmp_path / "*.gz"))
        assert_that(paths, equal_to([str(tmp_path / "a.gz"), str(tmp_path / "b.gz")]))


def test_abort_that_cannot_delete_warns_naming_the_file(tmp_path, monkeypatch, caplog):
    from apache_beam.io.filesystems import FileSystems

    w = tfrecord_io.AtomicShardWriter(str(tmp_path / "s.gz"))

    def refuse(paths):
        raise OSError("read-only file system")

    monkeypatch.setattr(FileSystems, "delete", refuse)
    w.abort()
    assert f"could not remove {w.temp_path}: read-only file system" in caplog.text


@pytest.mark.parametrize("how", ["gzip_trailer_crc", "deflate_bit_flip"])
def test_damage_found_by_isal_is_salvaged_by_zlib_ng_without_repeating_bytes(tmp_path, how):
    import io

    records = _incompressible_records(60, seed=3)
    good = str(tmp_path / "good.tfrecord.gz")
    tfrecord_io.write_shard(good, records)
    damaged = _damage(open(good, "rb").read(), how)
    # the oracle: zlib-ng alone, with its salvage, from the start
    expected, expected_error = b"", None
    try:
        for chunk in tfrecord_io._inflate(io.BytesIO(damaged), None, fast=False):
            expected += chunk
    except tfrecord_io.GzipStreamError as e:
        expected_error = str(e)
    with pytest.raises(tfrecord_io._FastPathFailed):  # ISA-L itself stops at the damage
        for _ in tfrecord_io._inflate(io.BytesIO(damaged), None, fast=True):
            pass
    got = b""
    with pytest.raises(tfrecord_io.GzipStreamError) as e:
        for chunk in tfrecord_io.inflate(io.BytesIO(damaged)):
            got += chunk
    assert got == expected and str(e.value) == expected_error and len(got) > 0

    class Unseekable(io.BytesIO):
        def seek(self, *args):
            raise io.UnsupportedOperation("not seekable")

    got = b""
    with pytest.raises(tfrecord_io.GzipStreamError):
        for chunk in tfrecord_io.inflate(Unseekable(damaged)):
            got += chunk
    assert expected.startswith(got)
