"""In-graph feature processing: raw columns -> embedding-table row ids and dense values.

These ops run inside the model, so training, evaluation and every exported signature apply
exactly the same graph to the same raw values (docs/invariants.md, 5). Readers deliver raw
strings and floats only.

The graph is vectorized: whatever the number of fields, a batch costs a handful of ops.
All hash-bucket fields are stacked into one [B, F] string tensor and hashed by one op, each
field's bucket count and table offset applied as a vector; integer-id fields are parsed
together as one [B, F'] tensor; dense columns are transformed together as one [B, D]
tensor, each column's clip, log1p and standardize applied as a vector or mask. Vocabulary
and bucketed fields take one lookup or bucketize op each, multi-valued fields and
sequences a split, a hash (or lookup) and a pad each.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from rocketctr.features.schema import CategoricalFeature, Schema

# How categorical values become hash buckets; part of what a trained table means. A run
# records it (`rocketctr.runs.feature_format`) and an export in its metadata.
#   1: to_hash_bucket_fast(value, hash_buckets), one op per field.
#   2: to_hash_bucket_fast(value, HASH_SPACE) % hash_buckets, one op for all fields. About
#      half of all values (64-bit fingerprint >= HASH_SPACE) land in another row than in 1.
HASHING_VERSION = 2
HASH_SPACE = 2**63 - 1  # the largest bucket count the op takes: a 63-bit hash of the value
HASHING_DESCRIPTION = (
    f"tf.strings.to_hash_bucket_fast(value, {HASH_SPACE}) % hash_buckets over all hashed "
    "fields at once; integer ids and derived fields are not hashed"
)

_INT_PATTERN = r"\s*-?[0-9]{1,18}\s*"

# Vocabulary tables by file: every processor over a feature reads one table (a SavedModel
# then holds it once, with the file as its asset).
_VOCABULARY_TABLES: dict[str, tf.lookup.StaticHashTable] = {}


def vocabulary_table(feature: CategoricalFeature) -> tf.lookup.StaticHashTable:
    """The static hash table value -> row (line number) of a resolved vocabulary feature,
    initialised from its file, tracked as a SavedModel asset."""
    if feature.learned is None or feature.learned.file is None:
        raise ValueError(
            f"Feature {feature.name!r} has a vocabulary but no statistics pass resolved it "
            "(rocketctr.features.statistics.resolve)."
        )
    path = feature.learned.file
    if path not in _VOCABULARY_TABLES:
        with tf.init_scope():  # created eagerly, even when first built inside a function
            initializer = tf.lookup.TextFileInitializer(
                tf.saved_model.Asset(path),
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
            )
            _VOCABULARY_TABLES[path] = tf.lookup.StaticHashTable(initializer, default_value=-1)
    return _VOCABULARY_TABLES[path]


def _column(raw: tf.Tensor) -> tf.Tensor:
    """A raw input as a [B] tensor (inputs are [B] already, or [B, 1])."""
    return raw if raw.shape.rank == 1 else tf.reshape(raw, [-1])


def _stack(columns: list[tf.Tensor]) -> tf.Tensor:
    return columns[0][:, None] if len(columns) == 1 else tf.stack(columns, axis=1)


def _concat(parts: list[tf.Tensor]) -> tf.Tensor:
    return parts[0] if len(parts) == 1 else tf.concat(parts, axis=1)


def _parse_int(raw: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Returns (value, valid) for a string or integer tensor; invalid strings give 0."""
    if raw.dtype.is_integer:
        return tf.cast(raw, tf.int64), tf.ones_like(raw, tf.bool)
    valid = tf.strings.regex_full_match(raw, _INT_PATTERN)
    value = tf.strings.to_number(tf.where(valid, raw, "0"), out_type=tf.int64)
    return value, valid


def _days_from_civil(year: tf.Tensor, month: tf.Tensor, day: tf.Tensor) -> tf.Tensor:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year = year - tf.cast(month <= 2, tf.int64)
    era = tf.math.floordiv(year, 400)
    yoe = year - era * 400
    mp = tf.math.floormod(month + 9, 12)
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _derive(
    features: Sequence[CategoricalFeature], raw: tf.Tensor
) -> tuple[list[tf.Tensor], tf.Tensor]:
    """Derived integer ids of one YYMMDDHH timestamp column, parsed once for all of them.

    Returns:
        ([id [B] per feature], valid [B]).
    """
    stamp, valid = _parse_int(raw)
    hour = stamp % 100
    day = (stamp // 100) % 100
    month = (stamp // 10_000) % 100
    year = 2000 + stamp // 1_000_000
    valid &= (hour < 24) & (day >= 1) & (day <= 31) & (month >= 1) & (month <= 12)
    values, weekday = [], None
    for feature in features:
        if feature.derive == "hour_of_day":
            values.append(hour)
            continue
        if weekday is None:  # Monday = 0; 1970-01-01 was a Thursday.
            weekday = tf.math.floormod(_days_from_civil(year, month, day) + 3, 7)
        values.append(weekday)
    return values, valid


def _positions(fields: Sequence[int]) -> list[int]:
    """Each slot's position within its field: 0, 1, .. over a field's run of slots."""
    return [fields[:n].count(f) for n, f in enumerate(fields)]


def _int64_vector(values: Sequence[int]) -> tf.Tensor:
    return tf.constant(np.asarray(values, np.int64))


class FeatureProcessor(tf_keras.layers.Layer):
    """Raw feature dict -> (row ids [B, S] into the shared table, dense values [B, D]).

    Every categorical feature owns a contiguous block of rows of one shared embedding
    table; its block offset comes from its position in the full schema, so a processor built
    for a subset of features (the light net's serving inputs) looks up the same rows. A
    sequence owns none: it reads its item feature's block.

    Ids come in S slots (`slot_fields`, `slot_names`): the single-valued fields first, one
    slot each, then each multi-valued field or sequence with `max_length` slots, -1 where a
    row has fewer values. `pool` makes per-field values [B, F, ...] of what was read per
    slot; `categorical` lists the F fields in that order.

    Row ids, per kind of categorical feature (local id + the feature's block offset):
        hash_buckets: `to_hash_bucket_fast(value, HASH_SPACE) % hash_buckets` (see
            HASHING_VERSION); missing "" is a value like any other. Integer inputs are
            hashed as their decimal text.
        num_ids: `id_offset + k` -> k; anything else (missing, text, out of range) -> the
            single out-of-vocabulary row `num_ids`.
        derive: hour of day or weekday of a YYMMDDHH timestamp, then as num_ids.
        vocabulary: the value's line in the vocabulary file (a static hash table); values
            not in it -> the OOV row (the vocabulary's size); missing "" -> the next row.
        buckets / quantiles: `Bucketize` of the number at the boundaries; missing -> the
            last row.
    Dense values: missing (NaN) becomes 0 after the transform; `clip_max` is applied before
    `log1p`, which is log(1 + max(x, 0)). +-inf is treated as missing too: readers refuse it
    in training data, and a served request that sends it gets the missing-value score, not NaN.

    Args:
        schema: the dataset schema.
        feature_names: the features to process, default all; order follows the schema.
    """

    def __init__(
        self, schema: Schema, feature_names: Sequence[str] | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        names = set(schema.feature_names if feature_names is None else feature_names)
        unknown = names - set(schema.feature_names)
        if unknown:
            raise ValueError(f"Features not in schema {schema.name!r}: {sorted(unknown)}")
        offsets, total = {}, 0
        for f in schema.categorical:
            offsets[f.name] = total
            total += f.num_rows
        offsets = {f.name: offsets[f.rows_of] for f in schema.categorical}  # sequences
        self.num_table_rows = total
        chosen = [f for f in schema.categorical if f.name in names]
        # The fields, in the order towers see them: single-valued ones, then multi-valued.
        self.multi_valued = [f for f in chosen if f.multi_valued]
        self.categorical = [f for f in chosen if not f.multi_valued] + self.multi_valued
        self._string_columns = {c for c in schema.input_columns if schema.is_string_column(c)}
        self.dense = [f for f in schema.dense if f.name in names]
        self._offsets = [offsets[f.name] for f in self.categorical]
        # Row ids come in slots: one per single-valued field, max_length per multi-valued
        # one (-1 where a row has fewer values); `pool` turns slots back into fields.
        self.slot_fields = tuple(
            i
            for i, f in enumerate(self.categorical)
            for _ in range(f.multi_valued.max_length if f.multi_valued else 1)
        )
        self.slot_names = tuple(self.categorical[i].name for i in self.slot_fields)
        # (feature, position within it) of each slot: the same slot in any processor.
        self.slot_keys = tuple(zip(self.slot_names, _positions(self.slot_fields), strict=True))
        self.field_offsets = tuple(self._offsets)

        # Fields are processed in kind groups (hashed, integer ids, derived, then looked up)
        # and put back in schema order by one gather at the end, when the groups interleave.
        single = list(enumerate(self.categorical[: len(self.categorical) - len(self.multi_valued)]))
        self._hashed = [i for i, f in single if f.hash_buckets]
        self._plain_ids = [i for i, f in single if f.num_ids and not f.derive]
        # Vocabulary and bucket fields: one lookup or bucketize op each.
        self._looked_up = [i for i, f in single if f.vocabulary or f.boundaries is not None]
        self._tables = {f.name: vocabulary_table(f) for f in self.categorical if f.vocabulary}
        derived_by_column: dict[str, list[int]] = {}
        for i, f in single:
            if f.derive:
                derived_by_column.setdefault(f.column, []).append(i)
        # Assigned whole: Keras tracks a layer's dict attributes, and refuses to checkpoint
        # one that changed outside its wrapper.
        self._derived = derived_by_column
        derived = [i for indices in self._derived.values() for i in indices]
        self._id_fields = self._plain_ids + derived
        order = self._hashed + self._id_fields + self._looked_up
        self._order = None if order == list(range(len(order))) else np.argsort(order)
        self._offsets_in_order = [self._offsets[i] for i in order]

        # Dense transforms as vectors: +inf clips nothing; the mask marks log1p columns.
        clips = [np.inf if f.clip_max is None else f.clip_max for f in self.dense]
        self._clip_max = np.asarray(clips, np.float32) if np.isfinite(clips).any() else None
        self._log1p = np.asarray([f.transform == "log1p" for f in self.dense], bool)
        self._standardize = np.asarray([f.transform == "standardize" for f in self.dense], bool)
        moments = [
            (f.learned.mean, f.learned.std or 1.0) if f.learned else (0.0, 1.0) for f in self.dense
        ]
        missing = [f.name for f in self.dense if f.transform == "standardize" and not f.learned]
        if missing:
            raise ValueError(
                f"standardize features {missing} need the statistics pass "
                "(rocketctr.features.statistics.resolve)"
            )
        self._mean = np.asarray([m for m, _ in moments], np.float32)
        self._std = np.asarray([sd for _, sd in moments], np.float32)

    def lookup_tables(self) -> list:
        """The vocabulary tables the processor reads (a SavedModel must track them)."""
        return list(self._tables.values())

    @property
    def input_columns(self) -> list[str]:
        cols = [f.name for f in self.dense]
        for f in self.categorical:
            if f.column not in cols:
                cols.append(f.column)
        return cols

    def pool(self, values: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
        """Per-slot values [B, S, ...] (rows read at `ids` [B, S]) -> per field [B, F, ...].

        A single-valued field's slot is its value; a multi-valued field's slots are summed
        or averaged over its values (slots with id -1 hold none). No values give 0.
        """
        if not self.multi_valued:
            return values
        num_single = len(self.categorical) - len(self.multi_valued)
        present = tf.cast(ids >= 0, values.dtype)
        if values.shape.rank == 3:
            present = present[:, :, None]
        fields = [values[:, :num_single]]
        start = num_single
        for f in self.multi_valued:
            end = start + f.multi_valued.max_length
            part, mask = values[:, start:end], present[:, start:end]
            pooled = tf.reduce_sum(part * mask, axis=1)
            if f.multi_valued.pooling == "mean":
                pooled /= tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
            fields.append(pooled[:, None])
            start = end
        return tf.concat(fields, axis=1)

    def sequences(
        self, values: tf.Tensor, ids: tf.Tensor
    ) -> dict[str, tuple[tf.Tensor, tf.Tensor]]:
        """{sequence feature: (its slots' values [B, L, d], present [B, L] float)}: the
        behaviour sequences unpooled, for attention towers."""
        out, start = {}, len(self.categorical) - len(self.multi_valued)
        for f in self.multi_valued:
            end = start + f.multi_valued.max_length
            if f.sequence_of:
                out[f.name] = (values[:, start:end], tf.cast(ids[:, start:end] >= 0, values.dtype))
            start = end
        return out

    def embed(self, ids: tf.Tensor, lookup) -> tf.Tensor:
        """Embeddings [B, F, d] of the fields: `lookup(ids, slot names)` [B, S, d], pooled."""
        return self.pool(lookup(ids, self.slot_names), ids)

    @property
    def input_dtypes(self) -> dict[str, tf.DType]:
        """{raw column: tf.string | tf.float32}, in `input_columns` order."""
        string = self._string_columns
        return {c: tf.string if c in string else tf.float32 for c in self.input_columns}

    def call(self, features: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        missing = [c for c in self.input_columns if c not in features]
        if missing:
            raise KeyError(f"Missing input columns {missing}; received {sorted(features)}")
        parts = []
        if self._hashed:
            parts.append(self._hashed_ids(features))
        if self._id_fields:
            parts.append(self._integer_ids(features))
        if self._looked_up:
            looked_up = [
                self._value_ids(self.categorical[i], _column(features[self.categorical[i].column]))
                for i in self._looked_up
            ]
            parts.append(_stack(looked_up))
        ids = None
        if parts:
            ids = _concat(parts) + _int64_vector(self._offsets_in_order)
            if self._order is not None:
                ids = tf.gather(ids, self._order, axis=1)
        if self.multi_valued:
            multi = [self._multi_ids(f, features[f.column]) for f in self.multi_valued]
            ids = _concat(([ids] if ids is not None else []) + multi)
        return ids, self._dense_values(features, ids)

    def _multi_ids(self, feature: CategoricalFeature, raw: tf.Tensor) -> tf.Tensor:
        """Row ids [B, max_length] of a multi-valued field: its first max_length non-empty
        values, each hashed or read as an id like a single value; -1 pads."""
        spec = feature.multi_valued
        raw = _column(raw)
        if raw.dtype != tf.string:
            raw = tf.strings.as_string(raw)
        values = tf.strings.split(raw, spec.separator)
        values = tf.ragged.boolean_mask(values, values != "")[:, : spec.max_length]
        flat = values.flat_values
        if feature.hash_buckets:
            local = tf.math.floormod(
                tf.strings.to_hash_bucket_fast(flat, HASH_SPACE), feature.hash_buckets
            )
        elif feature.vocabulary:
            local = self._value_ids(feature, flat)
        else:
            value, valid = _parse_int(flat)
            value -= feature.id_offset
            local = tf.where(
                valid & (value >= 0) & (value < feature.num_ids), value, feature.num_ids
            )
        offset = self._offsets[self.categorical.index(feature)]
        rows = values.with_flat_values(local + offset)
        return rows.to_tensor(default_value=-1, shape=[None, spec.max_length])

    def _value_ids(self, feature: CategoricalFeature, raw: tf.Tensor) -> tf.Tensor:
        """Local ids [N] of a vocabulary feature's values (unknown: the OOV row) or of a
        bucketed column's numbers (missing: the last row)."""
        if feature.vocabulary:
            if raw.dtype != tf.string:
                raw = tf.strings.as_string(raw)
            ids = self._tables[feature.name].lookup(raw)
            ids = tf.where(ids >= 0, ids, feature.learned.size)  # not in it: the OOV row
            missing = tf.constant(feature.learned.size + 1, tf.int64)
            return tf.where(raw == "", missing, ids)  # missing: a row of its own
        boundaries = [float(b) for b in feature.boundaries]
        x = tf.cast(raw, tf.float32)  # a numeric column: readers and serving give floats
        buckets = tf.cast(tf.raw_ops.Bucketize(input=x, boundaries=boundaries), tf.int64)
        return tf.where(tf.math.is_finite(x), buckets, len(boundaries) + 1)

    def _hashed_ids(self, features: dict[str, tf.Tensor]) -> tf.Tensor:
        """Local ids [B, F_hashed]: one hash op over all hashed fields, one modulo."""
        columns = []
        for i in self._hashed:
            raw = _column(features[self.categorical[i].column])
            columns.append(raw if raw.dtype == tf.string else tf.strings.as_string(raw))
        hashes = tf.strings.to_hash_bucket_fast(_stack(columns), HASH_SPACE)
        buckets = [self.categorical[i].hash_buckets for i in self._hashed]
        return tf.math.floormod(hashes, _int64_vector(buckets))

    def _integer_ids(self, features: dict[str, tf.Tensor]) -> tf.Tensor:
        """Local ids [B, F_ids] of integer-id and derived fields, in `_id_fields` order."""
        values, valids = [], []
        plain = [_column(features[self.categorical[i].column]) for i in self._plain_ids]
        text = [c for c in plain if c.dtype == tf.string]
        if text and len(text) == len(plain):  # the usual case: parse all in one op
            value, valid = _parse_int(_stack(text))
            values.append(value)
            valids.append(valid)
        else:
            for column in plain:
                value, valid = _parse_int(column)
                values.append(value[:, None])
                valids.append(valid[:, None])
        for column, indices in self._derived.items():
            derived, valid = _derive(
                [self.categorical[i] for i in indices], _column(features[column])
            )
            values.append(_stack(derived))
            valids.append(_stack([valid] * len(indices)))
        value, valid = _concat(values), _concat(valids)
        shift = [self.categorical[i].id_offset for i in self._plain_ids]
        if any(shift):
            value = value - _int64_vector(shift + [0] * (len(self._id_fields) - len(shift)))
        num_ids = _int64_vector([self.categorical[i].num_ids for i in self._id_fields])
        in_range = valid & (value >= 0) & (value < num_ids)
        return tf.where(in_range, value, num_ids)

    def _dense_values(self, features: dict[str, tf.Tensor], ids: tf.Tensor) -> tf.Tensor:
        """Dense values [B, D], every column transformed at once."""
        if not self.dense:
            return tf.zeros([tf.shape(ids)[0], 0], tf.float32)
        columns = []
        for f in self.dense:
            raw = _column(features[f.name])
            columns.append(raw if raw.dtype == tf.float32 else tf.cast(raw, tf.float32))
        x = _stack(columns)
        present = tf.math.is_finite(x)
        if self._clip_max is not None:
            x = tf.minimum(x, self._clip_max)
        if self._log1p.any():
            logs = tf.math.log1p(tf.maximum(x, 0.0))
            x = logs if self._log1p.all() else tf.where(self._log1p, logs, x)
        if self._standardize.any():
            x = tf.where(self._standardize, (x - self._mean) / self._std, x)
        # Missing is 0 whatever the transform (NaN and inf went through the ops above).
        return tf.where(present, x, 0.0)
