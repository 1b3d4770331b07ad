"""Feature schemas: `data_schemas/<name>.yaml` loaded into typed, validated specs.

A schema says how raw files look (format, columns, label) and what the model makes of them
(dense features with a transform, categorical features with a hash-bucket count or an integer
id range, an optional user id for GAUC, and privileged features that only the booster sees).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rocketctr.config import yaml_files

# Each file format a schema may name, and the `Reader` that reads it (rocketctr/data/; the
# readers import TensorFlow, and schemas are read before it loads, so they are named by path).
FORMATS = {
    "csv": "rocketctr.data.text.DelimitedReader",
    "tsv": "rocketctr.data.text.DelimitedReader",
    "libfm": "rocketctr.data.text.LibfmReader",
    "parquet": "rocketctr.data.parquet.ParquetReader",
    "tfrecord": "rocketctr.data.tfrecord.TFRecordReader",
}
DENSE_TRANSFORMS = ("none", "log1p", "standardize")
DERIVATIONS = ("hour_of_day", "weekday")


class SchemaError(ValueError):
    """A schema file that is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Learned:
    """What the statistics pass over the training files found for one feature
    (rocketctr/features/statistics.py); a schema as written has none.

    Attributes:
        size: a vocabulary's values (its rows, without the OOV row).
        file: the vocabulary file, one value per line, row k = line k.
        boundaries: bucket boundaries learned from quantiles.
        mean, std: a standardized dense feature's moments.
    """

    size: int | None = None
    file: str | None = None
    boundaries: tuple[float, ...] | None = None
    mean: float | None = None
    std: float | None = None


@dataclass(frozen=True)
class DenseFeature:
    """A numeric feature. Missing values (empty field, NaN) become 0 after the transform.

    Attributes:
        name: raw column name.
        transform: "none"; "log1p": log(1 + max(x, 0)), for heavy-tailed counts (Criteo
            integer features, which can be negative); or "standardize": (x − mean) / std,
            with the mean and std of the training files (the statistics pass).
        clip_max: optional upper clip applied before the transform.
        learned: the statistics pass's mean and std (standardize).
    """

    name: str
    transform: str = "none"
    clip_max: float | None = None
    learned: Learned | None = None


POOLINGS = ("mean", "sum")


@dataclass(frozen=True)
class MultiValued:
    """How a column holding several values per row (tags, genres) becomes one field.

    In delimited text the values are one field joined by `separator`; Parquet list columns
    and repeated tf.Example features are joined with it on reading, so the model (and the
    serving signature) sees one string per row. Empty values (an empty field, separators at
    the ends or doubled) are dropped; values past the first `max_length` are dropped.

    Attributes:
        separator: the string between values.
        max_length: values kept per row.
        pooling: "mean" or "sum" of the values' embedding rows (an empty list gives 0).
    """

    separator: str = "|"
    max_length: int = 8
    pooling: str = "mean"


@dataclass(frozen=True)
class Vocabulary:
    """A categorical feature's values, counted by the statistics pass over the training
    files: every value seen at least `min_count` times owns a row (most frequent first,
    ties by value); the rest, and values never seen, share one OOV row. The missing value
    "" has a row of its own after it, however often it was seen.

    Attributes:
        min_count: the rare-value threshold.
    """

    min_count: int = 1


@dataclass(frozen=True)
class CategoricalFeature:
    """A categorical feature mapped to rows of the shared embedding table.

    Exactly one of these says how a value finds its row:
        hash_buckets: any string value, hashed in-graph (`tf.strings.to_hash_bucket_fast`);
        num_ids: integer ids `id_offset .. id_offset + num_ids - 1`; anything else goes to
            one out-of-vocabulary row;
        vocabulary: the values the statistics pass counted often enough (`Vocabulary`),
            looked up in a static hash table, one OOV row, and one row for the missing
            value "" (not for a multi-valued field, whose empty values are dropped);
        buckets: a numeric column cut at these boundaries (n boundaries, n + 1 buckets,
            [b_i, b_i+1)), plus one row for a missing value;
        quantiles: as buckets, at the q-quantiles of the training files (the pass).

    Attributes:
        name: feature name (and raw column name unless `source` is given).
        source: raw column the value is computed from, when it differs from `name`.
        derive: in-graph derivation from the source column: "hour_of_day" or "weekday" of a
            YYMMDDHH timestamp (Avazu `hour`); yields integer ids.
        multi_valued: several values per row, pooled into one field (see `MultiValued`);
            each value is hashed or read as an id like a single value.
        sequence_of: a behaviour sequence (the user's last clicked items): its values are
            values of this item feature and read its rows (the feature owns none). It is a
            multi-valued field (mean pooling) to every tower, and attention towers (`din`)
            read its values one by one. Its ids, buckets and separator are resolved from
            the schema's `sequence` entry.
    """

    name: str
    hash_buckets: int | None = None
    num_ids: int | None = None
    id_offset: int = 0
    source: str | None = None
    derive: str | None = None
    multi_valued: MultiValued | None = None
    sequence_of: str | None = None
    vocabulary: Vocabulary | None = None
    buckets: tuple[float, ...] | None = None
    quantiles: int | None = None
    learned: Learned | None = None

    @property
    def column(self) -> str:
        return self.source or self.name

    @property
    def num_rows(self) -> int:
        """Rows this feature takes in the embedding table (ids + one OOV row); a sequence
        takes none: it reads its item feature's."""
        if self.sequence_of:
            return 0
        if self.hash_buckets:
            return self.hash_buckets
        if self.num_ids:
            return self.num_ids + 1
        if self.vocabulary and self.learned:  # + the OOV row (+ the missing value's row)
            return self.learned.size + (1 if self.multi_valued else 2)
        if self.buckets is not None:
            return len(self.buckets) + 2
        if self.quantiles and self.learned:
            return len(self.learned.boundaries) + 2
        raise SchemaError(
            f"Feature {self.name!r} takes its rows from the statistics pass over the training "
            "files (a vocabulary or quantiles), which this schema has not been through: "
            "train with it, or read it from a run dir."
        )

    @property
    def boundaries(self) -> tuple[float, ...] | None:
        """Bucket boundaries: given (`buckets`) or learned (`quantiles`)."""
        if self.buckets is not None:
            return self.buckets
        return self.learned.boundaries if self.quantiles and self.learned else None

    @property
    def needs_stats(self) -> bool:
        return bool(self.vocabulary or self.quantiles)

    @property
    def rows_of(self) -> str:
        """The feature whose block of rows this one reads: itself, or a sequence's item."""
        return self.sequence_of or self.name


@dataclass(frozen=True)
class Schema:
    """A dataset layout. See `data_schemas/*.yaml` for documented examples.

    Attributes:
        columns: raw column names in file order (delimited formats; for libfm, the label
            followed by one column per field; for parquet/tfrecord, the columns to read).
        label: label column; values > 0 are positives (libfm uses 1/-1).
        user_id: optional raw column grouping rows by user, for GAUC.
        request_id: optional raw column grouping the candidates of one request (page view,
            query): the ranking distillation methods rank rows within a request when it is
            set, within a user otherwise.
        privileged: names of features the booster sees and the light net never does.
        user_features: features describing the user (two-tower light nets; PFD+MD).
        item_features: features describing the item. With a two-tower light net the item
            tower reads these, the user tower every other non-privileged feature (user
            and context features: whatever the request knows).
    """

    name: str
    format: str
    columns: tuple[str, ...]
    label: str
    dense: tuple[DenseFeature, ...]
    categorical: tuple[CategoricalFeature, ...]
    header: bool = False
    delimiter: str = ","
    user_id: str | None = None
    request_id: str | None = None
    privileged: tuple[str, ...] = ()
    user_features: tuple[str, ...] = ()
    item_features: tuple[str, ...] = ()
    source: str = ""

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.dense] + [f.name for f in self.categorical]

    @property
    def input_columns(self) -> list[str]:
        """Raw columns the model reads (features only, no label), in a stable order."""
        cols: list[str] = []
        for c in [f.name for f in self.dense] + [f.column for f in self.categorical]:
            if c not in cols:
                cols.append(c)
        return cols

    def serving_columns(self) -> list[str]:
        """Raw columns the light net needs: input columns minus privileged-only ones."""
        light_cols: list[str] = []
        for f in self.dense:
            if f.name not in self.privileged:
                light_cols.append(f.name)
        for f in self.categorical:
            if f.name not in self.privileged and f.column not in light_cols:
                light_cols.append(f.column)
        return [c for c in self.input_columns if c in light_cols]

    def user_side_features(self) -> list[str]:
        """Non-privileged features that are not item features: user and context ones."""
        return [
            n
            for n in self.feature_names
            if n not in self.privileged and n not in self.item_features
        ]

    @property
    def needs_stats(self) -> bool:
        """Whether a feature learns from the statistics pass (vocabulary, quantiles,
        standardize), i.e. the schema must be resolved by rocketctr.features.statistics."""
        return any(f.needs_stats for f in self.categorical) or any(
            f.transform == "standardize" for f in self.dense
        )

    @property
    def multi_valued_columns(self) -> dict[str, MultiValued]:
        """{raw column: how its values are joined} of the multi-valued features."""
        return {f.column: f.multi_valued for f in self.categorical if f.multi_valued}

    @property
    def separators(self) -> dict[str, str]:
        """{multi-valued column: the separator its values are joined by}."""
        return {c: m.separator for c, m in self.multi_valued_columns.items()}

    @property
    def group_column(self) -> str | None:
        """The column whose equal values form a group for ranking distillation: the request
        id if the schema names one, else the user id."""
        return self.request_id or self.user_id

    def is_string_column(self, column: str) -> bool:
        """Categorical sources, the user and request ids are strings; dense columns and the
        columns that buckets or quantiles cut are floats (readers check they are numbers)."""
        numeric = {f.name for f in self.dense}
        numeric |= {f.column for f in self.categorical if f.buckets is not None or f.quantiles}
        return column not in numeric

    def to_dict(self) -> dict[str, Any]:
        """The mapping `parse_schema` reads back into this schema (`source` aside)."""

        def plain(value: Any) -> Any:
            if dataclasses.is_dataclass(value):
                return {
                    k: list(v) if isinstance(v, tuple) else v
                    for k, v in dataclasses.asdict(value).items()
                    if v is not None and k != "learned"  # the pass's findings are not written
                }
            return [plain(v) for v in value] if isinstance(value, tuple) else value

        out = {
            f.name: plain(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name != "source" and getattr(self, f.name) is not None
        }
        for entry, feature in zip(out["categorical"], self.categorical, strict=True):
            if feature.sequence_of:  # written as the `sequence` entry it was read from
                multi = feature.multi_valued
                entry.clear()
                entry.update(
                    name=feature.name, **({"source": feature.source} if feature.source else {})
                )
                entry["sequence"] = {
                    "separator": multi.separator,
                    "max_length": multi.max_length,
                    "item_feature": feature.sequence_of,
                }
        return out


def schema_names() -> list[str]:
    return sorted(
        p.name[: -len(".yaml")]
        for p in resources.files("rocketctr.data_schemas").iterdir()
        if p.name.endswith(".yaml")
    )


def load_schema(name_or_path: str) -> Schema:
    """Loads `data_schemas/<name>.yaml` by name, or a schema YAML by path."""
    path = Path(name_or_path)
    resource = resources.files("rocketctr.data_schemas") / f"{name_or_path}.yaml"
    # A schema's name wins over a directory of that name (say a run dir: --model_dir frappe).
    named = "/" not in name_or_path and resource.is_file() and not path.is_file()
    if not named and (path.suffix in (".yaml", ".yml") or path.exists()):
        if not path.exists():
            raise SchemaError(f"Schema file not found: {path}")
        return parse_schema(yaml_files.load(path, SchemaError), source=str(path))
    if not resource.is_file():
        raise SchemaError(
            f"Unknown schema {name_or_path!r}. Known: {schema_names()}; or pass a YAML path."
        )
    return parse_schema(
        yaml_files.parse(resource.read_text(), resource.name, SchemaError),
        source=f"data_schemas/{resource.name}",
    )


_SCHEMA_KEYS = {
    "name",
    "format",
    "columns",
    "label",
    "dense",
    "categorical",
    "header",
    "delimiter",
    "user_id",
    "request_id",
    "privileged",
    "user_features",
    "item_features",
    "description",
}
_DENSE_KEYS = {"name", "transform", "clip_max"}
_CATEGORICAL_KEYS = {
    "name",
    "hash_buckets",
    "num_ids",
    "id_offset",
    "source",
    "derive",
    "multi_valued",
    "sequence",
    "vocabulary",
    "buckets",
    "quantiles",
}
_VOCABULARY_KEYS = {"min_count"}
# How a categorical value finds its row: exactly one of these.
_ROW_KEYS = ("hash_buckets", "num_ids", "vocabulary", "buckets", "quantiles")
_MULTI_VALUED_KEYS = {"separator", "max_length", "pooling"}
_SEQUENCE_KEYS = {"separator", "max_length", "item_feature"}


def _multi_valued(item: Any, key: str, fail) -> MultiValued | None:
    """A `multi_valued` mapping checked key by key ({} takes every default)."""
    if item is None:
        return None
    if not isinstance(item, dict):
        fail(key, f"must be a mapping of {sorted(_MULTI_VALUED_KEYS)}. Received: {item!r}")
    extra = sorted(set(item) - _MULTI_VALUED_KEYS)
    if extra:
        fail(f"{key}.{extra[0]}", f"unknown key. Known keys: {sorted(_MULTI_VALUED_KEYS)}")
    value = MultiValued(**item)
    if not isinstance(value.separator, str) or not value.separator:
        fail(f"{key}.separator", f"must be a non-empty string. Received: {value.separator!r}")
    if type(value.max_length) is not int or value.max_length < 1:
        fail(f"{key}.max_length", f"must be a positive integer. Received: {value.max_length!r}")
    if value.pooling not in POOLINGS:
        fail(f"{key}.pooling", f"must be one of {list(POOLINGS)}. Received: {value.pooling!r}")
    return value


def _vocabulary(item: Any, key: str, fail) -> Vocabulary | None:
    if item is None:
        return None
    if not isinstance(item, dict) or set(item) - _VOCABULARY_KEYS:
        fail(key, f"must be a mapping of {sorted(_VOCABULARY_KEYS)}. Received: {item!r}")
    value = Vocabulary(**item)
    if type(value.min_count) is not int or value.min_count < 1:
        fail(f"{key}.min_count", f"must be a positive integer. Received: {value.min_count!r}")
    return value


def _buckets(item: Any, key: str, fail) -> tuple[float, ...] | None:
    if item is None:
        return None
    numbers = isinstance(item, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in item
    )
    if not numbers or not item or any(a >= b for a, b in itertools.pairwise(item)):
        fail(key, f"must be a non-empty list of increasing finite numbers. Received: {item!r}")
    return tuple(float(v) for v in item)


def _sequence(item: dict, key: str, entries: list, fmt: str, fail) -> CategoricalFeature:
    """A `sequence` entry as the multi-valued feature that reads its item feature's rows."""
    spec = item["sequence"]
    if not isinstance(spec, dict):
        fail(
            f"{key}.sequence", f"must be a mapping of {sorted(_SEQUENCE_KEYS)}. Received: {spec!r}"
        )
    extra = sorted(set(spec) - _SEQUENCE_KEYS)
    if extra:
        fail(f"{key}.sequence.{extra[0]}", f"unknown key. Known keys: {sorted(_SEQUENCE_KEYS)}")
    owned = sorted(set(item) & {"hash_buckets", "num_ids", "id_offset", "derive", "multi_valued"})
    if owned:
        fail(f"{key}.{owned[0]}", "is taken from the sequence's item_feature; remove it")
    target = spec.get("item_feature")
    items = {e.get("name"): e for e in entries if isinstance(e, dict)}
    if target not in items or "sequence" in items[target]:
        fail(
            f"{key}.sequence.item_feature",
            f"must name a categorical feature of the schema (not a sequence). Received: {target!r}",
        )
    if any(items[target].get(k) for k in ("multi_valued", "derive", "buckets", "quantiles")):
        fail(
            f"{key}.sequence.item_feature",
            f"must be single-valued ids or strings, not derived or bucketed: {target!r}",
        )
    if fmt == "libfm":
        fail(f"{key}.sequence", "libfm files hold one value per field")
    multi = _multi_valued(
        {"separator": spec.get("separator", "|"), "max_length": spec.get("max_length", 20)},
        f"{key}.sequence",
        fail,
    )
    target_item = items[target]
    return CategoricalFeature(
        name=item["name"],
        hash_buckets=target_item.get("hash_buckets"),
        num_ids=target_item.get("num_ids"),
        id_offset=target_item.get("id_offset", 0),
        source=item.get("source"),
        multi_valued=multi,
        sequence_of=target,
        vocabulary=_vocabulary(target_item.get("vocabulary"), f"{key}.sequence", fail),
    )


def parse_schema(data: Any, source: str = "<dict>") -> Schema:
    """Validates a schema mapping; every error names `source`, the key and what was received."""

    def fail(key: str, message: str) -> None:
        raise SchemaError(f"{source}: key {key!r}: {message}")

    fmt, columns, label = _layout(data, source, fail)
    dense = [
        _dense_feature(item, f"dense[{i}]", columns, fail)
        for i, item in enumerate(data.get("dense") or [])
    ]
    entries = data.get("categorical") or []
    categorical = [
        _categorical_feature(item, f"categorical[{i}]", entries, data, columns, fail)
        for i, item in enumerate(entries)
    ]
    _check_multi_valued_columns(data, dense, categorical, fail)
    names = [f.name for f in dense] + [f.name for f in categorical]
    if len(set(names)) != len(names):
        fail(
            "categorical",
            f"feature names repeat: {sorted({n for n in names if names.count(n) > 1})}",
        )
    if label in names:
        fail("label", f"the label column cannot also be a feature. Received: {label!r}")
    if not categorical:
        fail("categorical", "at least one categorical feature is required")
    user_id, request_id = data.get("user_id"), data.get("request_id")
    for key, value in (("user_id", user_id), ("request_id", request_id)):
        if value is not None and value not in columns:
            fail(key, f"must be one of the columns. Received: {value!r}")
    privileged = _privileged(data, names, categorical, fail)
    user_features, item_features = _sides(data, names, categorical, privileged, fail)
    delimiter = data.get("delimiter", {"tsv": "\t", "libfm": " "}.get(fmt, ","))
    return Schema(
        name=data["name"],
        format=fmt,
        columns=tuple(columns),
        label=label,
        dense=tuple(dense),
        categorical=tuple(categorical),
        header=bool(data.get("header", False)),
        delimiter=delimiter,
        user_id=user_id,
        request_id=request_id,
        privileged=tuple(privileged),
        user_features=tuple(user_features),
        item_features=tuple(item_features),
        source=source,
    )


def _layout(data: Any, source: str, fail) -> tuple[str, list[str], str]:
    """The file's format, columns and label column, checked."""
    if not isinstance(data, dict):
        raise SchemaError(f"{source}: a schema must be a mapping. Received: {data!r}")
    unknown = sorted(set(data) - _SCHEMA_KEYS)
    if unknown:
        fail(unknown[0], f"unknown key(s) {unknown}. Known keys: {sorted(_SCHEMA_KEYS)}")
    for key in ("name", "format", "label", "columns"):
        if key not in data:
            fail(key, "is required")
    fmt = data["format"]
    if fmt not in FORMATS:
        fail("format", f"must be one of {list(FORMATS)}. Received: {fmt!r}")
    columns = data["columns"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        fail("columns", f"must be a list of column names. Received: {columns!r}")
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        fail("columns", f"has duplicate names {dupes}")
    label = data["label"]
    if label not in columns:
        fail("label", f"must be one of the columns. Received: {label!r}")
    return fmt, columns, label


def _check_entry(key: str, item: Any, known: set[str], fail) -> None:
    if not isinstance(item, dict) or "name" not in item:
        fail(key, f"must be a mapping with a 'name'. Received: {item!r}")
    extra = sorted(set(item) - known)
    if extra:
        fail(f"{key}.{extra[0]}", f"unknown key. Known keys: {sorted(known)}")


def _dense_feature(item: Any, key: str, columns: list[str], fail) -> DenseFeature:
    _check_entry(key, item, _DENSE_KEYS, fail)
    if item["name"] not in columns:
        fail(f"{key}.name", f"is not one of the columns. Received: {item['name']!r}")
    transform = item.get("transform", "none")
    if transform not in DENSE_TRANSFORMS:
        fail(
            f"{key}.transform", f"must be one of {list(DENSE_TRANSFORMS)}. Received: {transform!r}"
        )
    return DenseFeature(item["name"], transform, item.get("clip_max"))


def _categorical_feature(
    item: Any, key: str, entries: list, data: dict, columns: list[str], fail
) -> CategoricalFeature:
    fmt = data["format"]
    _check_entry(key, item, _CATEGORICAL_KEYS, fail)
    if "sequence" in item:
        feature = _sequence(item, key, entries, fmt, fail)
    else:
        given = [k for k in _ROW_KEYS if item.get(k) is not None]
        if len(given) != 1:
            fail(key, f"needs exactly one of {list(_ROW_KEYS)}. Received: {item!r}")
        feature = CategoricalFeature(
            name=item["name"],
            hash_buckets=item.get("hash_buckets"),
            num_ids=item.get("num_ids"),
            id_offset=item.get("id_offset", 0),
            source=item.get("source"),
            derive=item.get("derive"),
            multi_valued=_multi_valued(item.get("multi_valued"), f"{key}.multi_valued", fail),
            vocabulary=_vocabulary(item.get("vocabulary"), f"{key}.vocabulary", fail),
            buckets=_buckets(item.get("buckets"), f"{key}.buckets", fail),
            quantiles=item.get("quantiles"),
        )
        quantiles = feature.quantiles
        if quantiles is not None and (type(quantiles) is not int or quantiles < 2):
            fail(f"{key}.quantiles", f"must be an integer >= 2. Received: {quantiles!r}")
        numeric = feature.buckets is not None or quantiles is not None
        if numeric and (feature.multi_valued or feature.derive):
            fail(key, "buckets and quantiles cut one number per row: no multi_valued, derive")
    for size_key in ("hash_buckets", "num_ids"):
        size = getattr(feature, size_key)
        if size is not None and (type(size) is not int or size < 1):  # not a bool
            fail(f"{key}.{size_key}", f"must be a positive integer. Received: {size!r}")
    if feature.column not in columns:
        fail(
            f"{key}.{'source' if feature.source else 'name'}",
            f"is not one of the columns. Received: {feature.column!r}",
        )
    if feature.derive is not None:
        if feature.derive not in DERIVATIONS:
            fail(
                f"{key}.derive", f"must be one of {list(DERIVATIONS)}. Received: {feature.derive!r}"
            )
        if feature.num_ids is None:
            fail(f"{key}.num_ids", "is required with 'derive' (derived values are ids)")
    if feature.multi_valued is not None:
        if feature.derive is not None:
            fail(f"{key}.multi_valued", "cannot be combined with 'derive'")
        if fmt == "libfm":
            fail(f"{key}.multi_valued", "libfm files hold one value per field")
        if feature.multi_valued.separator == data.get(
            "delimiter", {"tsv": "\t"}.get(fmt, ",")
        ) and fmt in ("csv", "tsv"):
            fail(f"{key}.multi_valued.separator", "must differ from the file's delimiter")
    return feature


def _check_multi_valued_columns(
    data: dict, dense: list[DenseFeature], categorical: list[CategoricalFeature], fail
) -> None:
    """Every feature of a multi-valued column reads it the same way; no dense feature, user
    id or request id reads one."""
    multi = {f.column: f.multi_valued for f in categorical if f.multi_valued}
    for i, f in enumerate(categorical):
        if f.column in multi and f.multi_valued != multi[f.column]:
            fail(
                f"categorical[{i}]",
                f"reads column {f.column!r}, which another feature reads as multi-valued; "
                "every feature of a column must read it the same way",
            )
    for d in dense:
        if d.name in multi:
            fail("dense", f"{d.name!r} is a multi-valued column; a dense feature cannot read it")
    for key in ("user_id", "request_id"):
        if data.get(key) in multi:
            fail(key, f"cannot be a multi-valued column. Received: {data[key]!r}")


def _privileged(
    data: dict, names: list[str], categorical: list[CategoricalFeature], fail
) -> list[str]:
    """The booster-only features, checked: the light net keeps a categorical feature."""
    privileged = data.get("privileged") or []
    for p in privileged:
        if p not in names:
            fail("privileged", f"names a feature the schema does not define. Received: {p!r}")
    for f in categorical:
        if f.sequence_of and f.sequence_of in privileged and f.name not in privileged:
            fail(
                "privileged",
                f"lists {f.sequence_of!r} but not the sequence {f.name!r} that "
                "reads its rows: the light net would read rows it never has",
            )
    if privileged and all(f.name in privileged for f in categorical):
        fail("privileged", "the light net needs at least one non-privileged categorical feature")
    return privileged


def _sides(
    data: dict,
    names: list[str],
    categorical: list[CategoricalFeature],
    privileged: list[str],
    fail,
) -> tuple[list[str], list[str]]:
    """The user and item features of a two-tower light net, checked."""
    user_features = data.get("user_features") or []
    item_features = data.get("item_features") or []
    for key, side in (("user_features", user_features), ("item_features", item_features)):
        if not isinstance(side, list) or not all(isinstance(n, str) for n in side):
            fail(key, f"must be a list of feature names. Received: {side!r}")
        for n in side:
            if n not in names:
                fail(key, f"names a feature the schema does not define. Received: {n!r}")
            if n in privileged:
                fail(key, f"names a privileged feature; the light net never sees it: {n!r}")
    both = sorted(set(user_features) & set(item_features))
    if both:
        fail("item_features", f"must be disjoint from user_features. Both list: {both}")
    if user_features and not item_features:
        fail("item_features", "must be non-empty when user_features is declared")
    categorical_names = {f.name for f in categorical}
    if item_features and not set(item_features) & categorical_names:
        fail(
            "item_features",
            f"needs a categorical feature (an item id). Received: {item_features!r}",
        )
    user_side = categorical_names - set(item_features) - set(privileged)
    if item_features and not user_side:
        fail("item_features", "leaves no non-privileged categorical feature for the user side")
    return user_features, item_features
