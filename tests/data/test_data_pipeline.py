"""make_dataset plumbing: globs, argument checks, batch sizes, shuffling, epochs."""

import rocketctr  # noqa: F401

# isort: split
import re

import numpy as np
import pytest

from rocketctr.data import BadRowReport, make_dataset


def _rows(first: int, count: int) -> str:
    """`count` well-formed rows; C1 holds the row's id (first, first + 1, ...)."""
    return "".join(f"{i % 2}\t{i}\t1\tr{i}\tu\n" for i in range(first, first + count))


def test_batches_are_full_except_the_last(tiny_schema, write, collect):
    path = write("a.tsv", _rows(0, 10))
    _, labels, sizes = collect(make_dataset(tiny_schema(), path, 4))
    assert sizes == [4, 4, 2]
    np.testing.assert_array_equal(labels, [i % 2 for i in range(10)])


def test_batches_stay_full_after_skipping_across_chunks(
    tiny_schema, write, collect, rows_per_chunk
):
    rows_per_chunk(3)
    rows = _rows(0, 12).splitlines(keepends=True)
    rows[1] = "1\tbad\t1\tr1\tu\n"  # chunk 1
    rows[7] = "1\t7\t1\n"  # chunk 3
    path = write("a.tsv", "".join(rows))
    report = BadRowReport()
    features, _, sizes = collect(
        make_dataset(tiny_schema(), path, 4, bad_rows="skip", report=report)
    )
    assert sizes == [4, 4, 2]
    assert features["C1"].tolist() == [f"r{i}" for i in range(12) if i not in (1, 7)]
    assert report.skipped() == {path: 2} and report.first_skipped() == {path: 2}


def test_files_from_several_patterns_and_chunks_keep_their_order(
    tiny_schema, write, collect, rows_per_chunk
):
    rows_per_chunk(2)
    a = write("part-0.tsv", _rows(0, 5))
    write("part-1.tsv", _rows(5, 3))
    c = write("other.tsv", _rows(8, 2))
    pattern = a.replace("part-0", "part-*")
    features, _, _ = collect(make_dataset(tiny_schema(), [pattern, c, a], 8))
    ids = [int(v[1:]) for v in features["C1"]]
    # Three files in flight, two lines per chunk, round robin: a0 a1 b5 b6 c8 c9 a2 a3 b7 a4.
    assert ids == [0, 1, 5, 6, 8, 9, 2, 3, 7, 4]


def test_shuffle_is_a_deterministic_permutation_given_the_seed(tiny_schema, write, collect):
    paths = [write(f"part-{k}.tsv", _rows(50 * k, 50)) for k in range(3)]

    def ids(**kwargs):
        features, _, sizes = collect(make_dataset(tiny_schema(), paths, 16, **kwargs))
        assert sizes == [16] * 9 + [6]
        return [int(v[1:]) for v in features["C1"]]

    plain = ids()
    shuffled = ids(shuffle=True, shuffle_buffer_rows=64, seed=7)
    assert sorted(shuffled) == plain == list(range(150))
    assert shuffled != plain
    assert ids(shuffle=True, shuffle_buffer_rows=64, seed=7) == shuffled
    assert ids(shuffle=True, shuffle_buffer_rows=64, seed=8) != shuffled
    # Each iteration (Keras starts one per epoch) gets a new order, reproducibly.
    ds = make_dataset(tiny_schema(), paths, 16, shuffle=True, shuffle_buffer_rows=64, seed=7)
    first, second = (collect(ds)[0]["C1"].tolist() for _ in range(2))
    assert [int(v[1:]) for v in first] == shuffled
    assert second != first and sorted(second) == sorted(first)


def test_epochs_repeat_the_data(tiny_schema, write, collect):
    path = write("a.tsv", _rows(0, 3))
    _, labels, sizes = collect(make_dataset(tiny_schema(), path, 4, num_epochs=2))
    assert sizes == [4, 2]
    np.testing.assert_array_equal(labels, [0, 1, 0, 0, 1, 0])
    forever = make_dataset(tiny_schema(), path, 4, num_epochs=None)
    assert len(list(forever.take(10))) == 10


def test_argument_errors_say_what_was_received(tiny_schema, write, tmp_path):
    schema, path = tiny_schema(), write("a.tsv", _rows(0, 2))
    with pytest.raises(
        ValueError, match=r"`bad_rows` must be one of \['error', 'skip'\]. Received: 'drop'"
    ):
        make_dataset(schema, path, 4, bad_rows="drop")
    with pytest.raises(ValueError, match=r"needs `report=BadRowReport\(\)`"):
        make_dataset(schema, path, 4, bad_rows="skip")
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer. Received: 0"):
        make_dataset(schema, path, 0)
    with pytest.raises(ValueError, match="`num_epochs` must be None or a positive integer"):
        make_dataset(schema, path, 4, num_epochs=0)
    missing = str(tmp_path / "nothing-*.tsv")
    with pytest.raises(
        FileNotFoundError, match=re.escape(f"No files match the pattern {missing!r}")
    ):
        make_dataset(schema, [path, missing], 4)
