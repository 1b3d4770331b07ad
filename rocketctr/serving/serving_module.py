"""The tf.Module a light SavedModel holds, and its signatures.

Signatures (every tensor has the batch dimension first, shape [None]):
    serving_default: one input per raw serving column, DT_STRING for categorical source
        columns (a multi-valued one: its values joined by its separator) and DT_FLOAT for
        dense and bucketed ones (missing = NaN, as readers deliver them).
    predict_examples: `examples`, serialized tf.Example protos (see example_codec.py); a
        multi-valued column's repeated values are joined by its separator.
    Both return `probabilities` (sigmoid) and `logits`, shape [None].
    A tower may declare more (`Tower.serving_signatures`, `Tower.serving_aliases`): the
    two-tower light net adds `score` (= serving_default) and `user_embedding` /
    `item_embedding` -> `embedding` [None, k].

The signatures call `CoTrainModel.light_logits` itself with the export's `LightTable` as
the lookup, so serving runs the training graph's feature processing and tower ops
(docs/invariants.md, 5).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import tensorflow as tf

from rocketctr.model.cotrain import CoTrainModel
from rocketctr.serving.example_codec import parse_examples
from rocketctr.serving.export_error import ExportError
from rocketctr.serving.light_table import LightTable
from rocketctr.towers.base import VectorSignature

SERVING_SIGNATURE = "serving_default"
EXAMPLES_SIGNATURE = "predict_examples"
EXAMPLES_INPUT = "examples"
OUTPUTS = ("probabilities", "logits")
EMBEDDING_OUTPUT = "embedding"


class ServingModule(tf.Module):
    """What a SavedModel holds: one tower's variables and its scoring signatures.

    Only the variables passed in are tracked, so only they are saved; a traced function
    that touched any other variable (say a booster weight) fails `tf.saved_model.save` with
    an "untracked resource" error instead of exporting it.

    Args:
        logits_fn: raw feature dict ({column: [B]}) -> logits [B], inference mode.
        embedding_variables: the embedding table(s) the tower reads.
        tower_variables: the tower's (and its feature processor's) variables.
        input_dtypes: {serving column: tf.string | tf.float32}, in signature order.
        example_dtypes: {serving column: how predict_examples parses it from a tf.Example}.
        vector_signatures: {signature name: VectorSignature} the tower declares.
        aliases: more names of serving_default the tower declares.
        separators: {multi-valued column: separator} (`Schema.separators`): such a
            column's repeated tf.Example values are joined by it.
        lookup_tables: the vocabulary tables the feature processing reads; their files
            become the SavedModel's assets.
    """

    def __init__(
        self,
        logits_fn: Callable[[dict[str, tf.Tensor]], tf.Tensor],
        embedding_variables: Sequence[tf.Variable],
        tower_variables: Sequence[tf.Variable],
        input_dtypes: Mapping[str, tf.DType],
        example_dtypes: Mapping[str, tf.DType],
        vector_signatures: Mapping[str, VectorSignature] | None = None,
        aliases: Sequence[str] = (),
        separators: Mapping[str, str] | None = None,
        lookup_tables: Sequence = (),
    ) -> None:
        super().__init__(name="rocketctr_export")
        self.embedding_variables = list(embedding_variables)
        self.tower_variables = list(tower_variables)
        self.logits_fn = logits_fn
        self.aliases = tuple(aliases)
        self.lookup_tables = list(lookup_tables)

        def outputs(features):
            logits = logits_fn(features)
            return {"probabilities": tf.sigmoid(logits), "logits": logits}

        self.serve = tf.function(outputs, input_signature=[_specs(input_dtypes)])

        def predict_examples(examples):
            return outputs(parse_examples(examples, input_dtypes, example_dtypes, separators))

        self.predict_examples = tf.function(
            predict_examples,
            input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)],
        )
        self.vector_signatures = {}
        for name, signature in (vector_signatures or {}).items():
            self.vector_signatures[name] = tf.function(
                _vector_outputs(signature.fn), input_signature=[_specs(signature.input_dtypes)]
            )

    def signatures(self) -> dict:
        signatures = {SERVING_SIGNATURE: self.serve, EXAMPLES_SIGNATURE: self.predict_examples}
        signatures.update({alias: self.serve for alias in self.aliases})
        signatures.update(self.vector_signatures)
        return signatures


def _specs(dtypes: Mapping[str, tf.DType]) -> dict[str, tf.TensorSpec]:
    return {c: tf.TensorSpec([None], dt, name=c) for c, dt in dtypes.items()}


def _vector_outputs(fn: Callable[[dict[str, tf.Tensor]], tf.Tensor]) -> Callable:
    def outputs(features):
        return {EMBEDDING_OUTPUT: fn(features)}

    return outputs


def serving_input_dtypes(model: CoTrainModel) -> dict[str, tf.DType]:
    """{raw serving column: tf.string | tf.float32}, in the order of the signature inputs."""
    return model.light_processor.input_dtypes


def light_table(model: CoTrainModel, dtype: str | None = None) -> LightTable | None:
    """The export's copy of the light features' rows (dtype: the run's export config);
    None for a light net that reads no embedding (LR)."""
    if model.light_table() is None:
        return None
    dtype = dtype or model.rocket_config.export.embedding_dtype
    names = [f.name for f in model.light_processor.categorical]
    return LightTable(model.light_table(), model.schema, names, dtype)


def build_light_module(
    model: CoTrainModel, example_dtypes: Mapping[str, tf.DType], table: LightTable | None
) -> ServingModule:
    """The light net's serving module, reading `table` (slim, maybe quantized)."""
    tower_vars = list(model.light_processor.variables) + list(model.light.variables)
    lookup = table.lookup if table is not None else None
    return ServingModule(
        lambda features: model.light_logits(features, lookup=lookup),
        table.variables_to_export if table is not None else [],
        tower_vars,
        serving_input_dtypes(model),
        example_dtypes,
        model.light_signatures(lookup),
        model.light.serving_aliases,
        model.schema.separators,
        model.light_processor.lookup_tables(),
    )


def save_module(module: ServingModule, path: Path) -> None:
    """Writes the SavedModel; refuses a light path that reads an untracked variable."""
    try:
        tf.saved_model.save(module, str(path), signatures=module.signatures())
    except AssertionError as e:
        if "untracked" not in str(e):
            raise
        raise ExportError(
            "The light scoring path reads a variable that is not part of the light path "
            "(a booster weight?); refusing to export it."
        ) from e


def export_tower(
    model: CoTrainModel,
    export_dir: str | Path,
    tower: str = "booster",
    embedding_dtype: str = "float32",
) -> Path:
    """Saves one tower's scoring path unverified. For latency comparisons ONLY.

    The product never serves the booster: `export_light` is the only export entry point.
    `benchmarks/serving_latency.py` uses this to time the booster (whole table) with the
    same signature machinery as the light net, and light nets with quantized tables
    (`embedding_dtype`, light only) without labelled rows for their AUC check.
    """
    if tower not in ("light", "booster"):
        raise ValueError(f"tower must be 'light' or 'booster'. Received: {tower!r}")
    if not getattr(model, f"has_{tower}"):
        raise ExportError(
            f"The model has no {tower} tower (mode {model.rocket_config.distill.mode!r})."
        )
    if tower == "light":
        dtypes = serving_input_dtypes(model)
        module = build_light_module(model, dtypes, light_table(model, embedding_dtype))
    else:
        source = model.frozen_booster or model  # a stopped booster: its kept copy
        processor, net, table = model.processor, source.booster, source.embedding

        def logits(features):  # the booster's, or an ensemble's mixture
            ids, dense = processor(features)
            return model.booster_outputs(ids, dense, False)["booster"].logits

        dtypes = processor.input_dtypes
        module = ServingModule(
            logits,
            list(table.variables),
            list(processor.variables) + list(net.variables),
            dtypes,
            dtypes,
            separators=model.schema.separators,
            lookup_tables=processor.lookup_tables(),
        )
    export_dir = Path(export_dir)
    tf.saved_model.save(module, str(export_dir), signatures=module.signatures())
    return export_dir
