"""Tower registry: a tower is a layer (embeddings [B, F, d], dense [B, D]) -> TowerOutput.

Towers with per-id first-order weights (LR, FM) also take those weights [B, F]."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import tensorflow as tf
import tf_keras

from rocketctr.config.core import ConfigError, TowerConfig, all_positive
from rocketctr.layers.first_order import FirstOrder

_REGISTRY: dict[str, type[Tower]] = {}


@dataclass(frozen=True)
class MLPConfig(TowerConfig):
    """The knobs of a tower's MLP (most towers have one)."""

    hidden_units: tuple[int, ...] = ()
    dropout: float = 0.0
    batch_norm: bool = False

    CHECKS = {
        "hidden_units": (all_positive, "must list positive layer widths"),
        "dropout": (lambda v: 0.0 <= v < 1.0, "must be in [0, 1)"),
    }


@dataclass(frozen=True)
class TowerInputs:
    """What a tower receives, by name: its embedding fields and dense columns, in order.

    Attributes:
        categorical: feature names of the F fields of `embeddings` [B, F, d].
        dense: feature names of the D columns of `dense` [B, D].
        item_features: the schema's item-side features (two_tower splits on them).
        rows: the table rows of each of the F fields (ids + OOV row, or hash buckets).
        offsets: each field's first row in the embedding table.
        sequences: (sequence feature, its item feature) of each behaviour sequence among
            the fields (attention towers read them unpooled, the item as the query).
        sequence_length: {sequence feature: its max_length}.
    """

    categorical: tuple[str, ...] = ()
    dense: tuple[str, ...] = ()
    item_features: tuple[str, ...] = ()
    rows: tuple[int, ...] = ()
    offsets: tuple[int, ...] = ()
    sequences: tuple[tuple[str, str], ...] = ()
    sequence_length: dict[str, int] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, processor, schema) -> TowerInputs:
        """The inputs a `FeatureProcessor` delivers, with the schema's item features."""
        return cls(
            categorical=tuple(f.name for f in processor.categorical),
            dense=tuple(f.name for f in processor.dense),
            item_features=tuple(schema.item_features),
            rows=tuple(f.num_rows for f in processor.categorical),
            offsets=processor.field_offsets,
            sequences=tuple(
                (f.name, f.sequence_of) for f in processor.categorical if f.sequence_of
            ),
            sequence_length={
                f.name: f.multi_valued.max_length for f in processor.categorical if f.sequence_of
            },
        )


class TowerOutput(NamedTuple):
    """What a tower returns.

    Attributes:
        logits: [B] pre-sigmoid scores.
        hidden: {name: [B, k]} the representations a distillation method may transfer (the
            last MLP layer "mlp", the cross output "cross", the CIN output "cin", ...); the
            names each tower offers are in its `hidden_names`.
    """

    logits: tf.Tensor
    hidden: dict[str, tf.Tensor]


# (row ids [B, F], the F feature names) -> embeddings [B, F, d]: the table an export reads.
Lookup = Callable[[tf.Tensor, Sequence[str]], tf.Tensor]


@dataclass(frozen=True)
class VectorSignature:
    """An extra serving signature a tower declares: raw columns -> vectors [B, output_dim].

    Attributes:
        fn: {column: [B]} -> float32 [B, output_dim], inference mode.
        input_dtypes: {raw column: tf.string | tf.float32}, in signature order.
        output_dim: the vectors' width.
    """

    fn: Callable[[dict[str, tf.Tensor]], tf.Tensor]
    input_dtypes: dict[str, tf.DType]
    output_dim: int


class Tower(tf_keras.layers.Layer):
    """Base class. A subclass registers by name (`class T(Tower, name="t")`) and sets
    `Config`, the frozen dataclass of the knobs it reads (checked when a config loads).

    A tower with `uses_first_order` owns a `FirstOrder` table over its own fields' rows
    (`self.first_order`); the model reads it like the embeddings and calls the tower with
    `first_order`, the fields' weights [B, F]. A tower without `reads_embeddings` (LR) gets
    embeddings [B, F, 0], and its path reads no embedding table at all (an export of it
    holds none).

    Args:
        config: the tower's config.
        inputs: the names of the fields and dense columns it receives (towers that treat
            fields differently, like two_tower, need them), and the fields' rows.
    """

    Config: type[TowerConfig] = TowerConfig
    hidden_names: tuple[str, ...] = ()  # the keys of TowerOutput.hidden
    uses_first_order: bool = False
    reads_embeddings: bool = True
    uses_sequences: bool = False  # called with `sequences`, see `FeatureProcessor.sequences`

    def __init_subclass__(cls, name: str | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:
            _REGISTRY[name] = cls

    def __init__(self, config: TowerConfig, inputs: TowerInputs | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.inputs = inputs
        self.first_order = None
        if self.uses_first_order:
            if inputs is None or len(inputs.rows) != len(inputs.categorical):
                raise ValueError(f"Tower {config.name!r} needs its fields' rows (TowerInputs).")
            self.first_order = FirstOrder(inputs.rows, inputs.offsets, name="first_order")

    def call(
        self,
        embeddings: tf.Tensor,
        dense: tf.Tensor,
        training: bool | None = None,
        first_order: tf.Tensor | None = None,
        sequences: dict[str, tuple[tf.Tensor, tf.Tensor]] | None = None,
    ) -> TowerOutput:
        raise NotImplementedError

    def flops(self, num_fields: int, embedding_dim: int) -> int:
        """Analytic FLOPs one example costs in the built tower, from its layer shapes.

        Counted: 2 FLOPs per multiply-add of every Dense kernel (2·in·out), the sum of the
        fields' first-order weights (towers with them), and the work of each sublayer that
        counts its own (`flops(num_fields, embedding_dim)`: crosses, CIN) or that the tower
        counts in `layer_flops` (say, an attention MLP run once per sequence position). Not
        counted: bias adds, activations, BatchNorm and Dropout at inference, embedding
        gathers and feature hashing (memory bound, the same for every tower on shared
        tables). It ranks towers by compute; it does not predict latency. A sublayer with
        weights that nothing counts is refused, never silently counted as 0.

        Args:
            num_fields: categorical fields the tower sees (F of its [B, F, d] input).
            embedding_dim: embedding width d.
        """
        if not self.built:
            raise ValueError(f"Tower {self.name!r} is not built; call the model once first.")
        layers = [m for m in self.submodules if isinstance(m, tf_keras.layers.Layer)]
        # A layer with its own flops() counts the layers inside it too.
        inside = {id(s) for m in layers if hasattr(m, "flops") for s in m.submodules}
        total = num_fields if self.uses_first_order else 0
        return total + sum(
            self.layer_flops(layer, num_fields, embedding_dim)
            for layer in layers
            if id(layer) not in inside
        )

    def layer_flops(self, layer: tf_keras.layers.Layer, num_fields: int, embedding_dim: int) -> int:
        """The FLOPs per example of one sublayer's own work (not its sublayers', unless it
        has a flops() method: then all of it)."""
        if isinstance(layer, tf_keras.layers.Dense):
            return dense_flops(layer) if layer.built else 0  # LR's, with no dense column
        if hasattr(layer, "flops"):
            return layer.flops(num_fields, embedding_dim)
        if isinstance(layer, _NO_FLOPS) or not _own_weights(layer):
            return 0
        raise NotImplementedError(
            f"Tower {self.name!r}: no FLOP count for its layer {layer.name!r} "
            f"({type(layer).__name__}); give the layer a flops() method, or count it in the "
            "tower's layer_flops()."
        )

    def row_variables(self) -> list[tf.Variable]:
        """The tower's own tables of rows (its first-order weights): like the embedding
        table, they take the embedding optimizer."""
        return list(self.first_order.trainable_variables) if self.first_order else []

    # Exported as light net, the tower may add signatures beyond the scoring ones (which
    # every export has); most towers add none.
    serving_aliases: tuple[str, ...] = ()  # more names for `serving_default`

    def serving_signatures(self, schema: Any, lookup: Lookup) -> dict[str, VectorSignature]:
        """{signature name: VectorSignature} this tower adds to a light export.

        Args:
            schema: the dataset schema.
            lookup: how the export reads embedding rows (see `Lookup`).
        """
        del schema, lookup
        return {}

    def serving_metadata(self) -> dict[str, Any]:
        """Entries for the export's rocketctr.json (say, how to combine extra outputs)."""
        return {}


# Layers with weights but no arithmetic per example worth counting: tables read by gathers,
# and BatchNorm (folded into the neighbouring Dense at inference).
_NO_FLOPS = (FirstOrder, tf_keras.layers.BatchNormalization)


def _own_weights(layer: tf_keras.layers.Layer) -> list[tf.Variable]:
    """The weights a layer holds itself, not through its sublayers."""
    nested = {
        id(w) for m in layer.submodules if isinstance(m, tf_keras.layers.Layer) for w in m.weights
    }
    return [w for w in layer.weights if id(w) not in nested]


def dense_flops(layer: tf_keras.layers.Dense) -> int:
    """2·in·out: one multiply-add per kernel weight."""
    fan_in, fan_out = layer.kernel.shape
    return 2 * int(fan_in) * int(fan_out)


def flat_inputs(embeddings: tf.Tensor, dense: tf.Tensor) -> tf.Tensor:
    """Concatenates flattened embeddings [B, F*d] and dense values [B, D]."""
    flat = tf.reshape(embeddings, [-1, embeddings.shape[1] * embeddings.shape[2]])
    # Under mixed precision Keras casts only a layer's first input to its compute dtype.
    return tf.concat([flat, tf.cast(dense, flat.dtype)], axis=1)


def tower_view(tower: Tower, inputs: TowerInputs, embedding_dim: int) -> tf_keras.Model:
    """A functional model over a built tower's own layers, for `summary()`: each layer's
    output shape and what it is connected to. It creates no variable: it shares the tower's.

    Its inputs are the tower's embeddings [B, F, d] and dense values [B, D] (and the
    first-order weights [B, F] of a tower that has them: its first-order table is read
    before, and is not in the view); its outputs {"logits": [B], <hidden name>: [B, k], ...}.
    """
    if not tower.built:
        raise ValueError(f"Tower {tower.name!r} is not built; call the model once first.")
    # Input names no layer of a tower takes (Keras names a tower's first Dense "dense").
    width = embedding_dim if tower.reads_embeddings else 0
    embeddings = tf_keras.Input(shape=(len(inputs.categorical), width), name="embeddings_input")
    dense = tf_keras.Input(shape=(len(inputs.dense),), name="dense_values_input")
    model_inputs = [embeddings, dense]
    kwargs = {}
    if tower.uses_first_order:
        kwargs["first_order"] = tf_keras.Input(
            shape=(len(inputs.categorical),), name="first_order_input"
        )
        model_inputs.append(kwargs["first_order"])
    if tower.uses_sequences:
        kwargs["sequences"] = {}
        for name, _ in inputs.sequences:
            length = inputs.sequence_length[name]
            values = tf_keras.Input(shape=(length, embedding_dim), name=f"{name}_input")
            present = tf_keras.Input(shape=(length,), name=f"{name}_present_input")
            kwargs["sequences"][name] = (values, present)
            model_inputs += [values, present]
    # `call`, not __call__ (which would make the tower one opaque node), so what __call__
    # does first is done here: cast the embeddings to the tower's compute dtype (bf16).
    tower_embeddings = embeddings
    if tower.compute_dtype != "float32":
        tower_embeddings = tf.cast(embeddings, tower.compute_dtype)
    output = tower.call(tower_embeddings, dense, training=False, **kwargs)
    outputs = {"logits": output.logits, **output.hidden}
    return tf_keras.Model(model_inputs, outputs, name=tower.name)


def tower_names() -> list[str]:
    return sorted(_REGISTRY)


def tower_class(name: str) -> type[Tower]:
    """The tower registered as `name`."""
    if name not in _REGISTRY:
        raise ConfigError(f"Unknown tower {name!r}. Known towers: {tower_names()}")
    return _REGISTRY[name]


def build_tower(config: TowerConfig, name: str, inputs: TowerInputs | None = None) -> Tower:
    """Builds the tower `config` names (a `Config` of that tower, checked when it loaded)."""
    cls = tower_class(config.name)
    if not isinstance(config, cls.Config):
        raise ConfigError(
            f"Tower {config.name!r} takes a {cls.Config.__name__}. Received: {config!r}"
        )
    return cls(config, inputs=inputs, name=name)
