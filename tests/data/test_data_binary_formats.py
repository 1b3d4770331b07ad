"""Parquet and TFRecord readers deliver the same features as the TSV reader for the same rows."""

import rocketctr  # noqa: F401

# isort: split
import gzip
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from rocketctr.data import BadRowError, BadRowReport, make_dataset
from tests.helpers import rows_of, write_tfrecord

# The same four rows three ways. C2 (the user id) holds integer ids, as TFX writes them.
TSV = "1\t3\t-2\tab\t17\n0\t\t1000\t\t5\n0\t0.5\t\tx\t\n1\t-7\t4\t\t123456789012\n"
COLUMNS = {
    "label": [1, 0, 0, 1],
    "I1": [3.0, None, 0.5, -7.0],
    "I2": [-2, 1000, None, 4],
    "C1": ["ab", None, "x", ""],
    "C2": [17, 5, None, 123456789012],
}


def _assert_same(features, labels, expected_features, expected_labels):
    assert sorted(features) == sorted(expected_features)
    for name, values in expected_features.items():
        if values.dtype == object:
            assert features[name].tolist() == values.tolist(), name
        else:
            assert features[name].dtype == np.float32, name
            np.testing.assert_array_equal(features[name], values, err_msg=name)
    np.testing.assert_array_equal(labels, expected_labels)


@pytest.fixture
def from_tsv(tiny_schema, write, collect):
    features, labels, _ = collect(make_dataset(tiny_schema(), write("rows.tsv", TSV), 8))
    assert features["C2"].tolist() == ["17", "5", "", "123456789012"]
    assert np.isnan(features["I1"][1]) and np.isnan(features["I2"][2])
    return features, labels


def test_parquet_matches_tsv(tiny_schema, tmp_path, collect, from_tsv, rows_per_chunk):
    rows_per_chunk(3)  # two record batches
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table(COLUMNS), path, row_group_size=2)
    features, labels, sizes = collect(make_dataset(tiny_schema("parquet"), str(path), 8))
    assert sizes == [4]
    _assert_same(features, labels, *from_tsv)


@pytest.mark.parametrize(
    ("name", "gzipped"),
    [("rows.tfrecord", False), ("rows.tfrecord.gz", True), ("rows-gzip-no-suffix", True)],
)
def test_tfrecord_matches_tsv(tiny_schema, tmp_path, collect, from_tsv, name, gzipped):
    path = write_tfrecord(tmp_path / name, rows_of(COLUMNS), gzipped)
    assert (Path(path).read_bytes()[:2] == b"\x1f\x8b") == gzipped
    features, labels, _ = collect(make_dataset(tiny_schema("tfrecord"), path, 8))
    _assert_same(features, labels, *from_tsv)


def test_tfrecord_kinds_come_from_the_first_record_with_the_column(tiny_schema, tmp_path, collect):
    rows = rows_of(COLUMNS)
    rows[0]["C2"] = None  # the first record lacks C2; the second has it as int64
    path = write_tfrecord(tmp_path / "a.tfrecord", rows, gzipped=False)
    features, _, _ = collect(make_dataset(tiny_schema("tfrecord"), path, 8))
    assert features["C2"].tolist() == ["", "5", "", "123456789012"]


def test_tfrecord_bad_records(tiny_schema, tmp_path, collect):
    rows = rows_of(COLUMNS)
    rows[1]["label"] = None  # record 2: no label
    rows[2]["C1"] = [b"x", b"y"]  # record 3: two values
    path = write_tfrecord(tmp_path / "bad.tfrecord", rows, gzipped=False)
    schema = tiny_schema("tfrecord")
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        list(make_dataset(schema, path, 8))
    assert f"{path}:2: column `label` (index 0): expected a number, received no value" in (
        raised.value.message
    )

    report = BadRowReport()
    features, labels, _ = collect(make_dataset(schema, path, 8, bad_rows="skip", report=report))
    assert features["C1"].tolist() == ["ab", ""]
    np.testing.assert_array_equal(labels, [1.0, 1.0])
    assert report.skipped() == {path: 2}
    assert report.summary() == f"{path}: skipped 2 of 4 rows (malformed), first at record 2"

    rows = rows_of(COLUMNS)
    rows[2]["C1"] = [b"x", b"y"]
    path = write_tfrecord(tmp_path / "repeated.tfrecord", rows, gzipped=False)
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        list(make_dataset(schema, path, 8))
    assert (
        f"{path}:3: column `C1` (index 3): expected one value, received 2" in raised.value.message
    )


def test_parquet_bad_rows_and_missing_columns(tiny_schema, tmp_path, collect, rows_per_chunk):
    rows_per_chunk(2)
    columns = dict(COLUMNS, label=[1, 0, None, 1])  # row 3: null label
    path = str(tmp_path / "bad.parquet")
    pq.write_table(pa.table(columns), path)
    schema = tiny_schema("parquet")
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        list(make_dataset(schema, path, 8))
    assert f"{path}:3: column `label` (index 0): expected a number, received null" in (
        raised.value.message
    )
    report = BadRowReport()
    features, _, _ = collect(make_dataset(schema, path, 8, bad_rows="skip", report=report))
    assert features["C1"].tolist() == ["ab", "", ""]
    assert report.skipped() == {path: 1} and report.rows_read() == {path: 4}

    # Numbers stored as text are validated like a TSV field.
    text_path = str(tmp_path / "text.parquet")
    pq.write_table(pa.table(dict(COLUMNS, I2=["-2", "1000", "", "four"])), text_path)
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        list(make_dataset(schema, text_path, 8))
    assert f"{text_path}:4: column `I2` (index 2): expected a number, received `four`" in (
        raised.value.message
    )

    no_c1 = str(tmp_path / "no_c1.parquet")
    pq.write_table(pa.table({k: v for k, v in COLUMNS.items() if k != "C1"}), no_c1)
    with pytest.raises(BadRowError, match=r"no_c1.parquet: missing column\(s\) \['C1'\]"):
        make_dataset(schema, no_c1, 8)


def test_kept_columns_pass_through_by_name(tiny_schema, tmp_path, collect, rows_per_chunk):
    # Parquet and tf.Example files keep any column by name (a request id the schema does
    # not list); rows keep their order across chunks.
    rows_per_chunk(3)
    requests = ["r1", "r2", "r3", "r4"]
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({**COLUMNS, "request": requests}), path, row_group_size=2)
    features, _, _ = collect(
        make_dataset(tiny_schema("parquet"), str(path), 8, keep_columns=["request"])
    )
    assert features["request"].tolist() == requests
    record = write_tfrecord(tmp_path / "rows.tfrecord", rows_of({**COLUMNS, "request": requests}))
    features, _, _ = collect(
        make_dataset(tiny_schema("tfrecord"), record, 8, keep_columns=["request"])
    )
    assert features["request"].tolist() == requests
    # A Parquet file without it is refused naming the column.
    pq.write_table(pa.table(COLUMNS), path)
    with pytest.raises(BadRowError, match=r"missing column\(s\) \['request'\]"):
        make_dataset(tiny_schema("parquet"), str(path), 8, keep_columns=["request"])


def _user_message(schema, path, policy):
    """The one line the CLI prints for reading `path` under `policy`."""
    from rocketctr.cli import user_error_message

    with pytest.raises(Exception) as raised:  # noqa: B017  (any error: its message counts)
        for _ in make_dataset(schema, str(path), 64, bad_rows=policy, report=BadRowReport()):
            pass
    message = user_error_message(raised.value)
    assert message is not None, f"a raw {type(raised.value).__name__}: {raised.value}"
    assert "\n" not in message
    return message


def _many_rows(n: int = 4000) -> dict:
    rng = np.random.default_rng(0)
    return {
        "label": [int(v) for v in rng.integers(0, 2, n)],
        "I1": [float(v) for v in rng.random(n)],
        "I2": [float(v) for v in rng.random(n)],
        "C1": [str(v) for v in rng.integers(0, 50, n)],
        "C2": [str(v) for v in rng.integers(0, 50, n)],
    }


@pytest.mark.parametrize("policy", ["error", "skip"])
def test_a_truncated_or_corrupt_parquet_file_is_named_in_one_line(tiny_schema, tmp_path, policy):
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table(_many_rows()), good, row_group_size=500, compression="snappy")
    data = good.read_bytes()
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(data[: len(data) // 2])
    assert _user_message(tiny_schema("parquet"), truncated, policy) == (
        f"{truncated}: not a readable Parquet file (Parquet magic bytes not found in footer. "
        "Either the file is corrupted or this is not a parquet file.)"
    )
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(data[:8] + bytes(b ^ 0x5A for b in data[8:72]) + data[72:])
    message = _user_message(tiny_schema("parquet"), corrupt, policy)
    assert message.startswith(
        f"{corrupt}: the Parquet data from row 1 on cannot be read (corrupt file? "
    )


@pytest.mark.parametrize("policy", ["error", "skip"])
def test_a_corrupt_tfrecord_file_is_named_with_its_last_whole_record(tiny_schema, tmp_path, policy):
    good = write_tfrecord(tmp_path / "good.tfrecord", rows_of(_many_rows()))
    data = bytearray(Path(good).read_bytes())
    start = len(data) // 3
    data[start : start + 20] = bytes(b ^ 0xFF for b in data[start : start + 20])
    corrupt = tmp_path / "corrupt.tfrecord"
    corrupt.write_bytes(bytes(data))
    message = _user_message(tiny_schema("tfrecord"), corrupt, policy)
    found = re.fullmatch(
        rf"{corrupt}: the TFRecord file is truncated or corrupt after record ([\d,]+) "
        r"\(corrupted record at \d+\); replace it, or leave it out of the inputs\.",
        message,
    )
    assert found, message
    # The records before the damage read whole; the one it hit does not.
    records = int(found[1].replace(",", ""))
    assert 0 < records < 4000


def test_a_tfrecord_file_whose_features_are_misnamed_is_refused_like_parquet(tiny_schema, tmp_path):
    """Keys that match no schema feature would read as missing in every record: refused,
    naming what is missing and what the records hold."""
    rows = {("c1" if k == "C1" else k): v for k, v in COLUMNS.items()}  # C1 spelled c1
    path = write_tfrecord(tmp_path / "rows.tfrecord", rows_of(rows))
    with pytest.raises(BadRowError) as refused:
        make_dataset(tiny_schema("tfrecord"), path, 8)
    assert str(refused.value) == (
        f"{path}: feature(s) ['C1'] required by schema 'tiny.yaml' are in none of the first 4 "
        "records (misnamed?). Features in them: ['C2', 'I1', 'I2', 'c1', 'label']"
    )


def test_a_tfrecord_record_storing_a_feature_as_another_kind_is_a_bad_row(
    tiny_schema, tmp_path, collect
):
    """C1 is bytes in the file, record 3 stores it as int64 (once a raw tf.data error that
    killed the run under either policy): a bad row named by file and 1-based record, or
    skipped and counted."""
    rows = rows_of(COLUMNS)
    rows[2]["C1"] = 7  # an int: int64_list
    path = write_tfrecord(tmp_path / "kinds.tfrecord", rows)
    schema = tiny_schema("tfrecord")
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        list(make_dataset(schema, path, 8))
    assert (
        f"{path}:3: column `C1` (index 3): expected bytes_list, received int64_list"
        in raised.value.message
    )
    report = BadRowReport()
    features, labels, _ = collect(make_dataset(schema, path, 8, bad_rows="skip", report=report))
    assert features["C1"].tolist() == ["ab", "", ""]
    np.testing.assert_array_equal(labels, [1.0, 0.0, 1.0])
    assert report.summary() == f"{path}: skipped 1 of 4 rows (malformed), first at record 3"


@pytest.mark.parametrize("policy", ["error", "skip"])
def test_a_truncated_tfrecord_file_is_refused_naming_where_its_records_stop(
    tiny_schema, tmp_path, policy
):
    """TensorFlow's reader ends quietly at a record header cut short (the records after the
    cut would vanish); a cut further into a record fails only once the reader is there. The
    record headers are walked before reading (a GZIP file's as it is checked whole): every
    cut but one between two records is refused at once, under either policy, naming the
    last whole record and the bytes."""
    good = write_tfrecord(tmp_path / "good.tfrecord", rows_of(_many_rows()))
    data = Path(good).read_bytes()
    # Record offsets from TensorFlow's reader: 12 header bytes, the data, 4 CRC bytes.
    sizes = [len(r) + 16 for r in tf.data.TFRecordDataset(good).as_numpy_iterator()]
    starts = np.cumsum([0, *sizes])
    assert len(sizes) == 4000 and starts[-1] == len(data)
    start, end = int(starts[2000]), int(starts[2001])
    schema = tiny_schema("tfrecord")

    def cut(at: int) -> Path:
        path = tmp_path / f"cut-{at}.tfrecord"
        path.write_bytes(data[:at])
        return path

    in_header = cut(start + 5)
    assert sum(1 for _ in tf.data.TFRecordDataset(str(in_header))) == 2000  # TF says nothing
    assert _user_message(schema, in_header, policy) == (
        f"{in_header}: the TFRecord file is truncated after record 2,000: it ends at byte "
        f"{start + 5:,}, 5 byte(s) into the 12-byte header of record 2,001; replace it, or "
        "leave it out of the inputs."
    )
    for at in (start + 12, start + 30, end - 2):  # after the header, in the data, in the CRC
        path = cut(at)
        assert _user_message(schema, path, policy) == (
            f"{path}: the TFRecord file is truncated or corrupt after record 2,000: record "
            f"2,001 starts at byte {start:,} and runs {end - start} bytes, past the end at byte "
            f"{at:,}; replace it, or leave it out of the inputs."
        )
    # Compressed after the cut: the gzip stream is whole, its records are walked as the
    # gzip check decompresses it.
    gzipped = tmp_path / "cut.tfrecord.gz"
    gzipped.write_bytes(gzip.compress(data[: start + 5]))
    assert sum(1 for _ in tf.data.TFRecordDataset(str(gzipped), "GZIP")) == 2000
    assert _user_message(schema, gzipped, policy) == (
        f"{gzipped}: the TFRecord file is truncated after record 2,000: it ends at byte "
        f"{start + 5:,} of its decompressed data, 5 byte(s) into the 12-byte header of record "
        "2,001. Copy the file again, or leave it out."
    )
    # Cut between two records: a whole file of 2,000 records, which no reader can tell.
    report, between = BadRowReport(), str(cut(start))
    for _ in make_dataset(schema, between, 64, bad_rows=policy, report=report):
        pass
    assert report.rows_read() == {between: 2000} and report.skipped() == {between: 0}


def test_the_record_walk_finds_every_cut_whatever_the_blocks_it_is_fed():
    """`RecordWalk` (plain files read a block at a time, GZIP files as they inflate): random
    records, cut anywhere, fed in blocks of random sizes, against the true record bounds."""
    import random
    import struct

    from rocketctr.data.tfrecord import RecordWalk

    rng = random.Random(0)
    for _ in range(2000):
        lengths = [rng.choice([0, 1, 5, 30, 200, 5000]) for _ in range(rng.randint(0, 20))]
        stream = b"".join(struct.pack("<Q", n) + b"\0" * 4 + b"x" * n + b"\0" * 4 for n in lengths)
        starts = np.cumsum([0] + [n + 16 for n in lengths]).tolist()
        cut = rng.randint(0, len(stream)) if rng.random() < 0.7 else len(stream)
        walk, at = RecordWalk(), 0
        while at < cut:
            size = rng.choice([1, 3, 12, 13, 100, 4096, 1 << 20])
            walk.feed(stream[at : min(at + size, cut)])
            at += size
        whole = sum(1 for end in starts[1:] if end <= cut)
        problem = walk.problem()
        assert walk.records == whole
        if cut in starts:
            assert problem is None
        elif cut - starts[whole] < 12:
            assert problem.startswith(f"the TFRecord file is truncated after record {whole:,}: ")
            assert f"it ends at byte {cut:,}, {cut - starts[whole]} byte(s) into the" in problem
        else:
            assert problem == (
                f"the TFRecord file is truncated or corrupt after record {whole:,}: record "
                f"{whole + 1:,} starts at byte {starts[whole]:,} and runs "
                f"{lengths[whole] + 16:,} bytes, past the end at byte {cut:,}"
            )
