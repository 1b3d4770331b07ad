"""Malformed variants of the real Criteo, Avazu and Frappe samples, and what each one gives.

Every variant is the first 30 data rows of a sample in ../shared/data with one thing broken
(or changed) in data row 5, or in the whole file. For each the table below states the exact
outcome under both bad-row policies, as the `train` command meets it (`check_inputs`
before the model is built, then a full read):

- `Fails(line, reason)`: one line naming `file:line` and the reason;
- `Reads(rows, skipped, first)`: that many rows delivered, that many skipped, the first
  skipped at line `first`;
- `NoRows(detail)`: refused before training, "No training rows: <file> <detail>".

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
import gzip
from dataclasses import dataclass
from pathlib import Path

import pytest

from rocketctr.cli import user_error_message
from rocketctr.data import BadRowReport, make_dataset
from rocketctr.file_layout import LayoutError, check_layout
from rocketctr.schema import load_schema
from rocketctr.train import check_inputs

ROWS = 30
BAD = 4  # index of the broken data row: line 5, or 6 below a header
SKIP_HINT = " (to drop and count such rows instead, use bad_rows=skip)"
SAMPLES = {
    "criteo": "criteo/criteo_kaggle_train_head9999.txt",
    "avazu": "avazu/avazu_train_head8999.csv",
    "frappe": "frappe/frappe.validation.libfm",
}


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
        as_csv = _layout("criteo", "comma-separated (40 columns); split on the schema's "
                         "delimiter it has 1", CRITEO_EXPECTS)  # fmt: skip
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
            ),  # fmt: skip
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


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[tuple[str, str, object, object]]:
    """(dataset, path, under "error", under "skip") for every variant, written to files."""
    from tests.data.conftest import SHARED_DATA

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
    return out


def _user_error(path: str, error: Exception) -> object:
    """The outcome an error gives at the command line: Fails or NoRows (one line each)."""
    message = user_error_message(error)
    assert message is not None, f"{path}: not a one-line user error: {error!r}"
    assert "\n" not in message
    if message.startswith("No training rows: "):
        return NoRows(message.removeprefix(f"No training rows: {path}").removeprefix(":").strip())
    assert message.startswith(f"{path}:"), message
    line, reason = message.removeprefix(f"{path}:").split(": ", 1)
    return Fails(int(line), reason)


def _preflight(dataset: str, paths: list[str], policy: str) -> object | None:
    """What `check_inputs` (layout check, then the first usable row) says of `paths` at the
    command line, or None when it lets them in."""
    try:
        check_inputs(load_schema(dataset), paths, "training", policy)
    except Exception as e:  # noqa: BLE001  (whatever it is, it must be a user message)
        return _user_error(paths[0], e)
    return None


def _read_together(dataset: str, paths: list[str], policy: str) -> dict[str, Reads]:
    """Rows a full pass over `paths` (one pipeline) delivers and skips, per file."""
    report = BadRowReport()
    for _ in make_dataset(load_schema(dataset), paths, 64, bad_rows=policy, report=report):
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
            check_layout(load_schema(dataset), [path], policy)
        except LayoutError as e:
            got[path] = _user_error(path, e)
            continue
        if isinstance(want, (NoRows, Fails)):  # Fails: a header the reader refuses
            got[path] = _preflight(dataset, [path], policy)
        else:
            to_read.setdefault(dataset, []).append(path)
    for dataset, paths in to_read.items():
        assert _preflight(dataset, paths, policy) is None
        got |= _read_together(dataset, paths, policy)
    assert got == expected
    assert len(got) >= {"error": 25, "skip": 60}[policy]  # the table is not silently emptied


# One malformed-row case per check, under "error" (each needs its own pipeline).
REPRESENTATIVE = {
    "criteo": ("too_many_columns", "label_2", "dense_not_a_number", "dense_inf"),
    "avazu": ("too_few_columns",),
    "frappe": ("token_index_not_a_number", "token_index_outside_its_field", "too_few_tokens"),
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
        (str(tmp_path), f"{tmp_path} is a directory, not a data file: give the files in it, "
                        f"e.g. {tmp_path}/*"),
        (f"{tmp_path}/*.tsv", f"No files match the pattern '{tmp_path}/*.tsv'"),
    ]:  # fmt: skip
        with pytest.raises(Exception) as raised:
            check_inputs(schema, [pattern], "training", "error")
        assert user_error_message(raised.value) == message
