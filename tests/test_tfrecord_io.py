import gzip
import os

import pytest
import tensorflow as tf

from transforms import tfrecord_io


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
    with pytest.raises(tfrecord_io.CorruptShardError, match="cannot open"):
        list(tfrecord_io.read_shard(str(tmp_path / "nope.gz")))


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
