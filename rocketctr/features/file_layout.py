"""A check of a text file's layout against its schema, from its first lines, before TF loads.

A CSV given to a TSV schema, a header the schema does not expect (or one it expects but
the file lacks), or a libfm file given to a delimited schema fails here, in well under a
second, with what the file looks like and what the schema expects. Pure Python, so the
command line runs it before TensorFlow is imported; the rows themselves are checked later
by the readers, row by row. Only local files of the text formats are looked at.

Under `bad_rows="error"` the first data line decides (it would fail in the reader anyway).
Under "skip" a file is refused only when none of its first `SAMPLE_LINES` lines reads (each
would be skipped), so a few malformed rows at the top of a good file pass.
"""

from __future__ import annotations

import glob
import gzip
import re
from collections.abc import Sequence

from rocketctr.features.schema import Schema

SAMPLE_LINES = 20
_DELIMITER_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe", " ": "space"}
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_LIBFM_TOKEN = re.compile(r"^[^:\s]+:[^:\s]+$")


class LayoutError(ValueError):
    """A data file whose first lines do not have the schema's layout; names file:line."""


def check_layout(schema: Schema, patterns: Sequence[str], bad_rows: str) -> None:
    """Refuses the first local text file of `patterns` whose layout is not the schema's.

    Raises:
        LayoutError: naming the file, the line, what it looks like and what the schema
            expects.
    """
    if schema.format not in ("csv", "tsv", "libfm"):
        return
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            problem = _encoding_problem(schema, path) or _problem(
                schema, path, _first_lines(path, SAMPLE_LINES + 1), bad_rows
            )
            if problem:
                raise LayoutError(problem)


# Byte-order marks of the encodings a text editor or Excel may save in, longest first.
_OTHER_ENCODINGS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
_HEAD_BYTES = 4096


def _encoding_problem(schema: Schema, path: str) -> str | None:
    """A file that is not UTF-8 text: another encoding, gzip without .gz, or binary."""
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
    except (OSError, EOFError):
        return None  # unreadable: the readers say so, naming the file
    for mark, encoding in _OTHER_ENCODINGS:
        if head.startswith(mark):
            return (
                f"{path}:1: the file looks {encoding} encoded (it starts with a {encoding} "
                f"byte-order mark); data files must be UTF-8 text (convert it, e.g. with "
                f"`iconv -f {encoding} -t UTF-8`)"
            )
    if head.startswith(b"\x1f\x8b"):
        return (
            f"{path}:1: the file looks gzip-compressed, but its name does not end in .gz "
            "(rename it to end in .gz: compressed files are read by their suffix)"
        )
    if b"\x00" in head:
        offset = head.index(b"\x00")
        line = head[:offset].count(b"\n") + 1
        return _message(
            schema, path, line, f"the file looks binary (a NUL byte at offset {offset})"
        )
    return None


def _first_lines(path: str, count: int) -> list[str]:
    """Up to `count` non-blank lines, BOM and line ends stripped; [] for unreadable files
    (the readers name those)."""
    opener = gzip.open if path.endswith(".gz") else open
    lines = []
    try:
        with opener(path, "rb") as f:
            for raw in f:
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n").lstrip("\ufeff")
                if text.strip():
                    lines.append(text)
                if len(lines) >= count:
                    break
    except (OSError, EOFError):
        return []
    return lines


def _split(line: str, delimiter: str) -> list[str]:
    return line.split() if delimiter == " " else line.split(delimiter)


def _looks(lines: list[str]) -> tuple[str, int] | None:
    """The file's apparent layout ("comma-separated", column count), from its lines."""
    first = lines[0]
    tokens = first.split()
    if len(tokens) > 1 and all(_LIBFM_TOKEN.match(t) for t in tokens[1:]):
        return "libfm (`label index:value ...`)", len(tokens)
    counts = {}
    for delimiter in _DELIMITER_NAMES:
        widths = {len(_split(line, delimiter)) for line in lines}
        if len(widths) == 1 and (width := widths.pop()) > 1:
            counts[delimiter] = width
    if not counts:
        return None
    delimiter = max(counts, key=counts.get)
    looks = f"{_DELIMITER_NAMES[delimiter]}-separated"
    numeric = [any(_NUMBER.match(f) for f in _split(line, delimiter)) for line in lines[:2]]
    if numeric == [False, True]:  # names, then values
        looks += " with a header row"
    return looks, counts[delimiter]


def _expects(schema: Schema) -> str:
    if schema.format == "libfm":
        return f"libfm (`label index:value ...`, {len(schema.columns)} tokens)"
    name = _DELIMITER_NAMES.get(schema.delimiter, repr(schema.delimiter))
    header = "with a header row" if schema.header else "without a header row"
    return f"{name}-separated {header} ({len(schema.columns)} columns)"


def _reads(schema: Schema, line: str) -> bool:
    """Whether a data line has the schema's width, and a numeric label where one is due."""
    fields = _split(line, schema.delimiter)
    if schema.format == "libfm":
        return len(fields) == len(schema.columns) and all(_LIBFM_TOKEN.match(t) for t in fields[1:])
    if len(fields) != len(schema.columns):
        return False
    return bool(_NUMBER.match(fields[schema.columns.index(schema.label)]))


def _is_header(schema: Schema, line: str) -> bool:
    if schema.format == "libfm":
        return False
    fields = [f.strip().strip('"') for f in _split(line, schema.delimiter)]
    return schema.label in fields or fields == list(schema.columns)


def _problem(schema: Schema, path: str, lines: list[str], bad_rows: str) -> str | None:
    if not lines:
        return None  # empty or unreadable: the readers say so, naming the file
    header_found = _is_header(schema, lines[0])
    if schema.header and not header_found:
        looks = _looks(lines)
        if looks and looks[0].endswith("with a header row"):
            return None  # a header of other names: the reader names the difference
        if not looks:
            return _message(schema, path, 1, "the file looks to have no header row")
        shape = f"{looks[0]} without a header row ({looks[1]} columns)"
        return _message(schema, path, 1, f"the file looks {shape}")
    if not schema.header and header_found:
        data = lines[1:]
        if bad_rows == "skip" and any(_reads(schema, line) for line in data):
            return None  # one malformed row at the top, skipped and counted
        return _message(schema, path, 1, "the file looks to start with a header row")
    data = lines[1:] if schema.header else lines
    sample = data if bad_rows == "skip" else data[:1]
    if not sample or any(_reads(schema, line) for line in sample):
        return None
    looks = _looks(data) or _looks(sample)
    line = 2 if schema.header else 1
    width = len(_split(sample[0], schema.delimiter))
    same = (
        schema.format != "libfm"
        and looks
        and looks[0].startswith(_DELIMITER_NAMES.get(schema.delimiter, "?") + "-")
    )
    if looks is None or same:
        return None  # no other layout fits: the reader's row message says more
    what = f"{looks[0]} ({looks[1]} columns)" if not looks[0].startswith("libfm") else looks[0]
    if schema.format != "libfm" and width != len(schema.columns):
        what += f"; split on the schema's delimiter it has {width}"
    return _message(schema, path, line, f"the file looks {what}")


def _message(schema: Schema, path: str, line: int, looks: str) -> str:
    source = schema.source or schema.name
    return (
        f"{path}:{line}: {looks}, but schema '{schema.name}' ({source}) expects "
        f"{_expects(schema)} (set the schema's format, delimiter and header to match the "
        "file, or use a schema that does)"
    )
