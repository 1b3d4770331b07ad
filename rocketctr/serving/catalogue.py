"""Item vectors of a two-tower export, precomputed for a catalogue (PFD+MD serving).

A two-tower light net scores ⟨u, v⟩ + bias. The item vectors v do not depend on the request,
so they are computed once per catalogue item with the export's `item_embedding` signature
and stored; serving runs the user tower once per request and a dot product per candidate
(or an approximate nearest-neighbour search over the stored vectors).

    write_item_vectors(export_dir, "items.csv", schema, "item_vectors.parquet")

The catalogue files hold one row per item with (at least) the schema's item columns: CSV or
TSV with a header row, or Parquet. Values are read the way `rocketctr.data` readers deliver
them: categorical columns as text (Parquet integers as their decimal string), an empty
field as "" (categorical) or NaN (dense).
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf

from rocketctr.data.raw_values import raw_values
from rocketctr.features.schema import Schema, load_schema
from rocketctr.towers.two_tower import ITEM_SIGNATURE

EMBEDDING_OUTPUT = "embedding"  # the output of a tower's vector signature
VECTOR_COLUMN = "vector"
_TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t"}


class CatalogueError(ValueError):
    """A catalogue or export that cannot give item vectors; the message says which file."""


def _files(patterns: str | Sequence[str]) -> list[str]:
    patterns = [patterns] if isinstance(patterns, str | Path) else list(patterns)
    files = []
    for pattern in patterns:
        matched = sorted(glob.glob(str(pattern)))
        if not matched:
            raise CatalogueError(f"Catalogue pattern {str(pattern)!r} matches no file.")
        files += matched
    return files


def _read_batches(path: str, columns: list[str], batch_rows: int) -> Iterator[pd.DataFrame]:
    """Item rows of one file in batches, as strings (text files) or Arrow types (Parquet)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        file = pq.ParquetFile(path)
        missing = sorted(set(columns) - set(file.schema_arrow.names))
        if missing:
            raise CatalogueError(f"{path}: lacks item columns {missing}")
        for batch in file.iter_batches(batch_size=batch_rows, columns=columns):
            yield batch.to_pandas()
        return
    if suffix not in _TEXT_SUFFIXES:
        raise CatalogueError(
            f"{path}: catalogue files must be .csv, .tsv or .parquet. Received: {suffix!r}"
        )
    header = pd.read_csv(path, sep=_TEXT_SUFFIXES[suffix], nrows=0).columns
    missing = sorted(set(columns) - set(header))
    if missing:
        raise CatalogueError(f"{path}: the header lacks item columns {missing}")
    yield from pd.read_csv(
        path, sep=_TEXT_SUFFIXES[suffix], usecols=columns, dtype=str, keep_default_na=False,
        chunksize=batch_rows,
    )  # fmt: skip


def _raw(values: pd.Series, string: bool, path: str, column: str) -> tf.Tensor:
    """Catalogue values -> raw values as readers deliver them (rocketctr.data.raw_values):
    integers as decimal text, missing as "" (categorical) or NaN (dense)."""
    array = pa.array(values, from_pandas=True)
    present = tf.constant(array.is_valid().to_numpy(zero_copy_only=False))
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        stored = tf.constant(np.array(array.fill_null("").to_pylist(), dtype=object), tf.string)
    elif pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        stored = tf.constant(array.fill_null(0).to_numpy(zero_copy_only=False))
    else:
        stored = tf.constant(np.array(array.cast(pa.string()).fill_null("").to_pylist(), object))
    try:
        return raw_values(stored, present, string)
    except tf.errors.InvalidArgumentError as e:
        raise CatalogueError(
            f"{path}: column {column!r} is dense but holds text: {e.message.splitlines()[0]}"
        ) from None


def resolve_version_dir(export_dir: str | Path) -> Path:
    """`export_dir` itself if it holds a SavedModel, else its latest numeric version."""
    path = Path(export_dir)
    if (path / "saved_model.pb").exists():
        return path
    versions = [p for p in path.iterdir() if p.name.isdigit()] if path.is_dir() else []
    if not versions:
        raise CatalogueError(f"{path} is neither an exported version nor an export base.")
    return max(versions, key=lambda p: int(p.name))


def write_item_vectors(
    export_dir: str | Path,
    catalogue: str | Sequence[str],
    schema: Schema | None,
    output: str | Path,
    *,
    id_column: str | None = None,
    batch_rows: int = 8192,
) -> dict[str, int]:
    """Writes item id -> item vector for every catalogue item to a Parquet file.

    Args:
        export_dir: an exported version directory with an `item_embedding` signature (a
            two-tower light net), or an export base (its latest version is used).
        catalogue: file glob(s) of item rows (.csv / .tsv with a header, or .parquet).
        schema: the schema the model was trained with; its `item_features` say which
            columns the item tower reads. None: the schema recorded in the export.
        output: the Parquet file to write: `<id_column>` (string) and `vector`
            (list<float32> of length k), one row per distinct item id, first row wins.
        id_column: the item id column; default the source column of the first
            categorical item feature (e.g. `item_id`, `adgroup_id`).
        batch_rows: rows scored per signature call.

    Returns:
        {"rows_read", "items_written", "duplicate_ids_skipped", "dimension"}.

    Raises:
        CatalogueError: no item_embedding signature, a file lacks item columns, a dense
            column holds text, or a pattern matches nothing.
    """
    export_dir = resolve_version_dir(export_dir)
    if schema is None:
        info = json.loads((export_dir / "assets.extra" / "rocketctr.json").read_text())
        schema = load_schema(info["config"]["schema"])
    loaded = tf.saved_model.load(str(export_dir))
    if ITEM_SIGNATURE not in loaded.signatures:
        raise CatalogueError(
            f"{export_dir} has no {ITEM_SIGNATURE!r} signature (signatures: "
            f"{sorted(loaded.signatures)}); export a two_tower light net."
        )
    signature = loaded.signatures[ITEM_SIGNATURE]
    specs = signature.structured_input_signature[1]
    if id_column is None:
        item = set(schema.item_features)
        id_column = next(f.column for f in schema.categorical if f.name in item)
    columns = list(dict.fromkeys([id_column, *specs]))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    seen: set[str] = set()
    counts = {"rows_read": 0, "items_written": 0, "duplicate_ids_skipped": 0, "dimension": 0}
    writer = None
    try:
        for path in _files(catalogue):
            for frame in _read_batches(path, columns, batch_rows):
                counts["rows_read"] += len(frame)
                raw_ids = _raw(frame[id_column], True, path, id_column).numpy()
                ids = np.array([v.decode() for v in raw_ids], dtype=object)
                keep = []
                for i, item_id in enumerate(ids):
                    if item_id in seen:
                        counts["duplicate_ids_skipped"] += 1
                    else:
                        seen.add(item_id)
                        keep.append(i)
                if not keep:
                    continue
                frame, ids = frame.iloc[keep], ids[keep]
                inputs = {
                    c: _raw(frame[c], s.dtype == tf.string, path, c) for c, s in specs.items()
                }
                vectors = signature(**inputs)[EMBEDDING_OUTPUT].numpy().astype(np.float32)
                counts["dimension"] = int(vectors.shape[1])
                table = pa.table(
                    {
                        id_column: pa.array(ids.tolist(), pa.string()),
                        VECTOR_COLUMN: pa.FixedSizeListArray.from_arrays(
                            pa.array(vectors.reshape(-1)), vectors.shape[1]
                        ),
                    }
                )
                if writer is None:
                    writer = pq.ParquetWriter(str(tmp), table.schema)
                writer.write_table(table)
                counts["items_written"] += len(ids)
        if writer is None:
            raise CatalogueError(f"The catalogue {catalogue!r} has no rows.")
        writer.close()
        writer = None
        tmp.rename(output)  # never leave a half-written vector file a server would trust
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return counts
