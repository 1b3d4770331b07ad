"""Malformed variants of the real Criteo, Avazu and Frappe samples, and what each one gives.

Every variant is the first 30 data rows of a sample in ../shared/data with one thing broken
(or changed) in data row 5, or in the whole file. For each the table below states the exact
outcome under both bad-row policies, as the `train` command meets it (`check_inputs`
before the model is built, then a full read):

- `Fails(line, reason)`: one line naming `file:line` and the reason;
- `Reads(rows, skipped, first)`: that many rows delivered, that many skipped, the first
  skipped at line `first`;
- `NoRows(detail)`: refused before training, "No training rows: <file> <detail>";
- `Refused(reason)`: one line naming the file and what is wrong with it as a whole, no
  line (a damaged Parquet or TFRecord container).

The Criteo sample is also written as Parquet and as TFRecord (`CONTAINERS`), and broken as
a container: a Parquet file with corrupt pages, a TFRecord file with a flipped byte in
record 5, and a record 5 storing a categorical feature as int64. (A truncated Parquet or
TFRecord file and misnamed TFRecord keys are stated line for line in
tests/data/test_data_binary_formats.py, eval rows of one class in tests/test_faults.py.)

Accepted variants are documented acceptances (README, "Reliability"): CRLF line ends and a
UTF-8 byte-order mark are stripped, NaN is a missing dense value, categorical values are
bytes (invalid UTF-8 is an id like any other), libfm tokens may be separated by any
whitespace and a categorical token's value is not read, libfm labels are 1 and 0 or -1.

Parse only: the skip-policy reads and the accepted files of a dataset share one pipeline
(the report counts per file). Under "error", a representative row case per check runs here;
every row case runs under `-m slow` (`test_every_row_case_fails_naming_its_line`). The
end-to-end cases, one per outcome kind, are in tests/test_cli.py.
"""

from __future__ import annotations

import rocketctr  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# isort: split
import dataclasses
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rocketctr.cli import user_error_message
from rocketctr.data import BadRowReport, make_dataset
from rocketctr.features.file_layout import LayoutError, check_layout
from rocketctr.features.schema import load_schema
from rocketctr.training.inputs import check_inputs
from tests.helpers import SHARED_DATA, _example, write_tfrecord

ROWS = 30
BAD = 4  # index of the broken data row: line 5, or 6 below a header
SKIP_HINT = " (to drop and count such rows instead, use bad_rows=skip)"
SAMPLES = {
    "criteo": "criteo/criteo_kaggle_train_head9999.txt",
    "avazu": "avazu/avazu_train_head8999.csv",
    "frappe": "frappe/frappe.validation.libfm",
}
# The Criteo sample in other containers: dataset name -> the schema's format (and suffix).
CONTAINERS = {"criteo_parquet": "parquet", "criteo_tfrecord": "tfrecord"}


@dataclass(frozen=True)
class Fails:
    line: int
    reason: str  # the message after "file:line: ", up to the hint on bad_rows


@dataclass(frozen=True)
class Reads:
    rows: int
    skipped: int = 0
    first: int | None = None


@dataclass(frozen=True)
class NoRows:
    detail: str


@dataclass(frozen=True)
class Refused:
    reason: str  # the message after "file: "


def _schema(dataset: str):
    if dataset in CONTAINERS:
        return dataclasses.replace(load_schema("criteo"), format=CONTAINERS[dataset])
    return load_schema(dataset)


def _row_fails(line: int, reason: str) -> Fails:
    """A malformed row: the message ends with how to skip such rows instead."""
    return Fails(line, reason + SKIP_HINT)


def _layout(schema: str, looks: str, expects: str) -> str:
    return (
        f"the file looks {looks}, but schema '{schema}' (data_schemas/{schema}.yaml) expects "
        f"{expects} (set the schema's format, delimiter and header to match the file, or use "
        "a schema that does)"
    )


CRITEO_EXPECTS = "tab-separated without a header row (40 columns)"
AVAZU_EXPECTS = "comma-separated with a header row (24 columns)"
FRAPPE_EXPECTS = "libfm (`label index:value ...`, 11 tokens)"
UTF16 = (
    "the file looks UTF-16 encoded (it starts with a UTF-16 byte-order mark); data files must "
    "be UTF-8 text (convert it, e.g. with `iconv -f UTF-16 -t UTF-8`)"
)
GZIP = (
    "the file looks gzip-compressed, but its name does not end in .gz (rename it to end in "
    ".gz: compressed files are read by their suffix)"
)


def _set(line: bytes, sep: bytes, index: int, value: bytes) -> bytes:
    fields = line.split(sep)
    fields[index] = value
    return sep.join(fields)


def _variants(dataset: str, sample: list[bytes]) -> dict[str, tuple[bytes, object, object]]:
    """name -> (file bytes, outcome under "error", outcome under "skip")."""
    header = sample[:1] if dataset == "avazu" else []
    rows = sample[len(header) :]
    sep = {"criteo": b"\t", "avazu": b",", "frappe": b" "}[dataset]
    label = 1 if dataset == "avazu" else 0
    line = BAD + 1 + len(header)  # the broken row's line number
    last = ROWS + len(header)

    def text(data_rows: list[bytes], end: bytes = b"\n", head=header) -> bytes:
        return end.join(head + data_rows) + end

    def row(new: bytes) -> bytes:
        return text(rows[:BAD] + [new] + rows[BAD + 1 :])

    bad = rows[BAD]
    one_bad = Reads(ROWS - 1, 1, line)
    fine = Reads(ROWS)
    cases = {
        # Line ends, byte-order mark: stripped.
        "crlf": (text(rows, b"\r\n"), fine, fine),
        "utf8_bom": (b"\xef\xbb\xbf" + text(rows), fine, fine),
        "label_2": (
            row(_set(bad, sep, label, b"2")),
            _row_fails(
                line,
                f"column `{'click' if dataset == 'avazu' else 'label'}` (index {label}): "
                f"expected a label {'-1 or 0 or 1' if dataset == 'frappe' else '0 or 1'}, "
                "received 2",
            ),
            one_bad,
        ),
        "empty": (b"", NoRows("holds no data row."), NoRows("holds no data row.")),
        "utf16": (text(rows).decode().encode("utf-16"), Fails(1, UTF16), Fails(1, UTF16)),
        "gzip_without_gz_suffix": (gzip.compress(text(rows)), Fails(1, GZIP), Fails(1, GZIP)),
    }
    if dataset in ("criteo", "avazu"):
        width = {"criteo": 40, "avazu": 24}[dataset]
        name = "click" if dataset == "avazu" else "label"
        expects = CRITEO_EXPECTS if dataset == "criteo" else AVAZU_EXPECTS
        binary = bytes(range(256)) * 8
        cut = rows[-1][: len(rows[-1]) // 2]
        cases |= {
            "too_few_columns": (
                row(sep.join(bad.split(sep)[:-1])),
                _row_fails(line, f"expected {width} columns, received {width - 1}"),
                one_bad,
            ),
            "too_many_columns": (
                row(bad + sep + b"x"),
                _row_fails(line, f"expected {width} columns, received {width + 1}"),
                one_bad,
            ),
            # No quoting in these formats: a quoted delimiter splits the field.
            "quoted_delimiter": (
                row(_set(bad, sep, width - 1, b'"a' + sep + b'b"')),
                _row_fails(line, f"expected {width} columns, received {width + 1}"),
                one_bad,
            ),
            "blank_line": (
                text(rows[:BAD] + [b""] + rows[BAD:]),
                _row_fails(line, f"expected {width} columns, received 1"),
                Reads(ROWS, 1, line),
            ),
            "truncated_last_line": (
                text(rows[:-1] + [cut]),
                _row_fails(last, f"expected {width} columns, received {len(cut.split(sep))}"),
                Reads(ROWS - 1, 1, last),
            ),
            "label_not_a_number": (
                row(_set(bad, sep, label, b"yes")),
                _row_fails(
                    line, f"column `{name}` (index {label}): expected a number, received `yes`"
                ),
                one_bad,
            ),
            "label_empty": (
                row(_set(bad, sep, label, b"")),
                _row_fails(
                    line, f"column `{name}` (index {label}): expected a number, received ``"
                ),
                one_bad,
            ),
            # Categorical values are bytes: invalid UTF-8 is hashed like any other id.
            "categorical_invalid_utf8": (row(bad + b"\xff\xfe"), fine, fine),
            "binary": (
                binary,
                Fails(1, _layout(dataset, "binary (a NUL byte at offset 0)", expects)),
                Fails(1, _layout(dataset, "binary (a NUL byte at offset 0)", expects)),
            ),
            "gzip": (gzip.compress(text(rows)), fine, fine),
        }
    if dataset == "criteo":
        dense = "column `I1` (index 1): expected "
        names = b"\t".join([b"label"] + [b"I%d" % i for i in range(1, 14)])
        names += b"\t" + b"\t".join(b"C%d" % i for i in range(1, 27))
        as_csv = _layout(
            "criteo",
            "comma-separated (40 columns); split on the schema's delimiter it has 1",
            CRITEO_EXPECTS,
        )
        # A dense value that is not a number, or not finite in float32: (name, value, shown,
        # what was expected).
        for name, value, shown, expected in [
            ("not_a_number", b"abc", "abc", "a number"),
            ("hex", b"0x10", "0x10", "a number"),
            ("padded", b" 3", " 3", "a number"),
            ("invalid_utf8", b"\xff\xfe", "\ufffd\ufffd", "a number"),
            ("inf", b"inf", "inf", "a finite float32 number"),
            ("minus_infinity", b"-Infinity", "-Infinity", "a finite float32 number"),
            ("overflows_float32", b"1e40", "1e40", "a finite float32 number"),
        ]:
            cases[f"dense_{name}"] = (
                row(_set(bad, sep, 1, value)),
                _row_fails(line, f"{dense}{expected}, received `{shown}`"),
                one_bad,
            )
        cases |= {
            # NaN is how pandas and numpy write a missing value.
            "dense_nan": (row(_set(bad, sep, 1, b"NaN")), fine, fine),
            "header_row": (
                text([names] + rows),
                Fails(1, _layout("criteo", "to start with a header row", CRITEO_EXPECTS)),
                Reads(ROWS, 1, 1),
            ),
            "comma_separated": (
                text([r.replace(b"\t", b",") for r in rows]),
                Fails(1, as_csv),
                Fails(1, as_csv),
            ),
            "newlines_only": (
                b"\n\n\n",
                _row_fails(1, "expected 40 columns, received 1"),
                NoRows("skipped 3 of 3 rows (malformed), first at line 1"),
            ),
            "every_row_malformed": (
                text([r + b"\tx" for r in rows]),
                _row_fails(1, "expected 40 columns, received 41"),
                NoRows(f"skipped {ROWS} of {ROWS} rows (malformed), first at line 1"),
            ),
        }
    if dataset == "avazu":
        no_header = _layout(
            "avazu", "comma-separated without a header row (24 columns)", AVAZU_EXPECTS
        )
        expected = header[0].decode()
        misspelled = header[0].replace(b"click", b"clicks")
        mismatch = (
            "the header does not match the schema columns (data_schemas/avazu.yaml): "
            f"expected `{expected}`, received `{misspelled.decode()[:80]}...`"
        )
        cases |= {
            "header_only": (text([]), NoRows("holds no data row."), NoRows("holds no data row.")),
            "no_header": (text(rows, head=[]), Fails(1, no_header), Fails(1, no_header)),
            "header_misspelled": (
                text(rows, head=[misspelled]),
                Fails(1, mismatch),
                Fails(1, mismatch),
            ),
        }
    if dataset == "frappe":
        tokens = bad.split(b" ")

        def token(value: bytes) -> bytes:
            return b" ".join([tokens[0], value, *tokens[2:]])

        user = "column `user` (index 1): "
        cases |= {
            "token_without_value": (
                row(token(b"5")),
                _row_fails(line, user + "expected `index:value`, received `5`"),
                one_bad,
            ),
            "token_index_not_a_number": (
                row(token(b"abc:1")),
                _row_fails(line, user + "expected `index:value`, received `abc:1`"),
                one_bad,
            ),
            "token_index_outside_its_field": (
                row(token(b"-3:1")),
                _row_fails(
                    line,
                    user + "received index `-3`, outside the field range 0..956 (id_offset 0, "
                    "num_ids 957)",
                ),
                one_bad,
            ),
            "too_few_tokens": (
                row(b" ".join(tokens[:-1])),
                _row_fails(line, "expected 11 tokens (label + 10 fields), received 10"),
                one_bad,
            ),
            "too_many_tokens": (
                row(bad + b" 7:1"),
                _row_fails(line, "expected 11 tokens (label + 10 fields), received 12"),
                one_bad,
            ),
            "label_0": (row(b"0" + bad[bad.index(b" ") :]), fine, fine),
            "categorical_value_not_1": (row(token(tokens[1].split(b":")[0] + b":0.5")), fine, fine),
            "tab_separated": (text([r.replace(b" ", b"\t") for r in rows]), fine, fine),
            "double_spaces": (row(bad.replace(b" ", b"  ")), fine, fine),
            "criteo_tsv": (
                b"0\t1\t2\tab\n" * 3,
                Fails(1, _layout("frappe", "tab-separated (4 columns)", FRAPPE_EXPECTS)),
                Fails(1, _layout("frappe", "tab-separated (4 columns)", FRAPPE_EXPECTS)),
            ),
        }
    return cases


def _criteo_rows(sample: list[bytes]) -> list[dict]:
    """The Criteo sample's rows as a TFX ExampleGen would store them: the label and the
    dense counts as int64, the categorical ids as bytes, an empty field absent."""
    names = load_schema("criteo").columns
    rows = []
    for line in sample:
        row = {}
        for name, value in zip(names, line.decode().split("\t"), strict=True):
            numeric = name == "label" or name.startswith("I")
            row[name] = None if value == "" else int(value) if numeric else value
        rows.append(row)
    return rows


def _container_variants(dataset: str, sample: list[bytes], scratch: Path) -> dict:
    """As `_variants`, for the Criteo sample in the container of `dataset`."""
    rows = _criteo_rows(sample)
    line = BAD + 1  # 1-based record (or row) number of the broken one
    if dataset == "criteo_parquet":
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows), buffer, compression="snappy")
        data = buffer.getvalue()
        # Bytes of the first column chunk's page flipped, the footer intact.
        corrupt = data[:8] + bytes(b ^ 0x5A for b in data[8:72]) + data[72:]
        pages = Refused(  # pyarrow quotes the byte raw: escaped, the line stays printable
            "the Parquet data from row 1 on cannot be read (corrupt file? Couldn't deserialize "
            "thrift: don't know what type: \\x0f)"
        )
        return {"corrupt_pages": (corrupt, pages, pages)}
    # TFRecord: each record is 12 bytes of header, the tf.Example, 4 bytes of CRC.
    starts = [0]
    for row in rows:
        starts.append(starts[-1] + 12 + len(_example(row)) + 4)
    data = Path(write_tfrecord(scratch / "whole.tfrecord", rows)).read_bytes()
    assert len(data) == starts[-1]
    flipped = bytearray(data)
    flipped[starts[BAD] + 12 + 10] ^= 0xFF  # a byte of record 5's tf.Example
    corrupt = Refused(  # TensorFlow's offset: where the record's tf.Example starts
        f"the TFRecord file is truncated or corrupt after record {BAD} (corrupted record at "
        f"{starts[BAD] + 12}); replace it, or leave it out of the inputs."
    )
    mistyped = [dict(row) for row in rows]
    mistyped[BAD]["C1"] = 7  # an int64_list where the records hold bytes
    return {
        "bit_flipped": (bytes(flipped), corrupt, corrupt),
        "mistyped_feature": (
            Path(write_tfrecord(scratch / "mistyped.tfrecord", mistyped)).read_bytes(),
            _row_fails(line, "column `C1` (index 14): expected bytes_list, received int64_list"),
            Reads(ROWS - 1, 1, line),
        ),
    }


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[tuple[str, str, object, object]]:
    """(dataset, path, under "error", under "skip") for every variant, written to files."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (kept outside the repository)")
    root = tmp_path_factory.mktemp("fuzz")
    out = []
    for dataset, sample in SAMPLES.items():
        lines = (SHARED_DATA / sample).read_bytes().split(b"\n")
        head = lines[: ROWS + (dataset == "avazu")]
        (root / dataset).mkdir()
        for name, (data, error, skip) in _variants(dataset, head).items():
            path = root / dataset / (name + (".gz" if name == "gzip" else ""))
            path.write_bytes(data)
            out.append((dataset, str(path), error, skip))
    criteo = (SHARED_DATA / SAMPLES["criteo"]).read_bytes().split(b"\n")[:ROWS]
    for dataset, suffix in CONTAINERS.items():
        (root / dataset).mkdir()
        scratch = root / dataset / "scratch"
        scratch.mkdir()
        for name, (data, error, skip) in _container_variants(dataset, criteo, scratch).items():
            path = root / dataset / f"{name}.{suffix}"
            path.write_bytes(data)
            out.append((dataset, str(path), error, skip))
    return out


def _user_error(path: str, error: Exception) -> object:
    """The outcome an error gives at the command line: Fails or NoRows (one line each)."""
    message = user_error_message(error)
    assert message is not None, f"{path}: not a one-line user error: {error!r}"
    assert "\n" not in message
    if message.startswith("No training rows: "):
        return NoRows(message.removeprefix(f"No training rows: {path}").removeprefix(":").strip())
    assert message.startswith(f"{path}:"), message
    if message.startswith(f"{path}: "):
        return Refused(message.removeprefix(f"{path}: "))
    line, reason = message.removeprefix(f"{path}:").split(": ", 1)
    return Fails(int(line), reason)


def _preflight(dataset: str, paths: list[str], policy: str) -> object | None:
    """What `check_inputs` (layout check, then the first usable row) says of `paths` at the
    command line, or None when it lets them in."""
    try:
        check_inputs(_schema(dataset), paths, "training", policy)
    except Exception as e:  # noqa: BLE001  (whatever it is, it must be a user message)
        return _user_error(paths[0], e)
    return None


def _read_together(dataset: str, paths: list[str], policy: str) -> dict[str, Reads]:
    """Rows a full pass over `paths` (one pipeline) delivers and skips, per file."""
    report = BadRowReport()
    for _ in make_dataset(_schema(dataset), paths, 64, bad_rows=policy, report=report):
        pass
    read, skipped, first = report.rows_read(), report.skipped(), report.first_skipped()
    return {p: Reads(read[p] - skipped[p], skipped[p], first.get(p)) for p in paths}


@pytest.mark.parametrize("policy", ["error", "skip"])
def test_every_variant_gives_its_stated_outcome(cases, policy):
    """Layout refusals are pure Python, one file at a time; a file without rows (or with a
    wrong header) needs its own `check_inputs`; the files that read share one `check_inputs`
    and one pass per dataset (a malformed row in any of them under "error" would fail both,
    naming it)."""
    column = 2 if policy == "error" else 3
    got, expected, to_read = {}, {}, {}
    for case in cases:
        dataset, path, want = case[0], case[1], case[column]
        if isinstance(want, Fails) and want.reason.endswith(SKIP_HINT):
            continue  # a malformed row under "error": one pipeline each, below and -m slow
        expected[path] = want
        try:
            check_layout(_schema(dataset), [path], policy)
        except LayoutError as e:
            got[path] = _user_error(path, e)
            continue
        if isinstance(want, (NoRows, Fails, Refused)):  # Fails: a header the reader refuses
            got[path] = _preflight(dataset, [path], policy)
        else:
            to_read.setdefault(dataset, []).append(path)
    for dataset, paths in to_read.items():
        assert _preflight(dataset, paths, policy) is None
        got |= _read_together(dataset, paths, policy)
    assert got == expected
    assert len(got) >= {"error": 34, "skip": 66}[policy]  # the table is not silently emptied


# One malformed-row case per check, under "error" (each needs its own pipeline).
REPRESENTATIVE = {
    "criteo": ("too_many_columns", "label_2", "dense_not_a_number", "dense_inf"),
    "avazu": ("too_few_columns",),
    "frappe": ("token_index_not_a_number", "token_index_outside_its_field", "too_few_tokens"),
    "criteo_tfrecord": ("mistyped_feature.tfrecord",),
}


def _row_error_cases(cases, only=None):
    return [
        (dataset, path, error)
        for dataset, path, error, _ in cases
        if isinstance(error, Fails)
        and error.reason.endswith(SKIP_HINT)
        and (only is None or Path(path).name in only.get(dataset, ()))
    ]


def test_a_malformed_row_fails_naming_its_line_under_error(cases):
    chosen = _row_error_cases(cases, REPRESENTATIVE)
    assert len(chosen) == sum(map(len, REPRESENTATIVE.values()))
    for dataset, path, error in chosen:
        assert _preflight(dataset, [path], "error") == error, path


@pytest.mark.slow
def test_every_row_case_fails_naming_its_line(cases):
    for dataset, path, error in _row_error_cases(cases):
        assert _preflight(dataset, [path], "error") == error, path


def test_a_directory_or_a_pattern_matching_nothing_is_named(tmp_path):
    schema = load_schema("criteo")
    for pattern, message in [
        (
            str(tmp_path),
            f"{tmp_path} is a directory, not a data file: give the files in it, e.g. {tmp_path}/*",
        ),
        (f"{tmp_path}/*.tsv", f"No files match the pattern '{tmp_path}/*.tsv'"),
    ]:
        with pytest.raises(Exception) as raised:
            check_inputs(schema, [pattern], "training", "error")
        assert user_error_message(raised.value) == message
