"""Checks an export must pass before it is published, each on its own.

    check_variables:  exactly the light path's variables (the light features' table rows,
                      the light tower); no booster or distillation-method weight, no
                      optimizer slot, no row of a privileged feature; parameter count =
                      light rows × dim (+ one scale per row for int8) + light tower
                      parameters.
    check_signatures: the signatures take exactly the serving columns (no privileged
                      input) and return what they declare.
    check_parity:     every signature of the reloaded export scores rows like the in-memory
                      light net within PARITY_ATOL (float32: the training table itself;
                      bfloat16/int8: the same rows quantized in memory).
These are guarantees 3 and 4 of docs/invariants.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from rocketctr.model.cotrain import CoTrainModel, variable_role
from rocketctr.serving import light_table as light_table_lib
from rocketctr.serving.example_codec import serialize_examples
from rocketctr.serving.export_error import ExportError
from rocketctr.serving.quality import quality_change
from rocketctr.serving.serving_module import (
    EMBEDDING_OUTPUT,
    EXAMPLES_INPUT,
    EXAMPLES_SIGNATURE,
    OUTPUTS,
    SERVING_SIGNATURE,
    light_table,
    serving_input_dtypes,
)
from rocketctr.towers.base import VectorSignature

PARITY_ATOL = 1e-5
_LIGHT_ROLES = ("shared_embedding", "light_embedding", "light")


def _graph_def(saved_model_dir: Path):
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((saved_model_dir / "saved_model.pb").read_bytes())
    return proto.meta_graphs[0]


def parsed_example_keys(saved_model_dir: str | Path) -> set[str]:
    """Feature keys every ParseExample op in a SavedModel reads (from the graph itself)."""
    keys: set[str] = set()
    library = _graph_def(Path(saved_model_dir)).graph_def.library
    for function in library.function:
        nodes = {n.name: n for n in function.node_def}
        for node in function.node_def:
            if node.op != "ParseExampleV2":
                continue
            # Inputs: serialized, names, sparse_keys, dense_keys, ragged_keys, dense_defaults.
            for ref in node.input[2:5]:
                const = nodes.get(ref.split(":")[0])
                if const is None or const.op != "Const":
                    raise ExportError(f"Cannot read the parsed keys of {node.name} ({ref}).")
                values = tf.make_ndarray(const.attr["value"].tensor)
                keys.update(v.decode() for v in np.atleast_1d(values))
    return keys


def _forbidden_columns(schema) -> set[str]:
    """Privileged feature names plus raw columns that only privileged features read."""
    privileged = set(schema.privileged)
    light_columns = set(schema.serving_columns())
    privileged_columns = {f.name for f in schema.dense if f.name in privileged} | {
        f.column for f in schema.categorical if f.name in privileged
    }
    return privileged | (privileged_columns - light_columns)


def loaded_variables(loaded: Any) -> list[tf.Variable]:
    descendants = tf.train.TrackableView(loaded).descendants()
    return list({id(t): t for t in descendants if isinstance(t, tf.Variable)}.values())


def check_variables(path: Path, loaded: Any, model: CoTrainModel, dtype: str) -> int:
    """Returns the export's parameter count; raises ExportError unless it is the light path."""
    checkpoint_keys = [k for k, _ in tf.train.list_variables(str(path / "variables" / "variables"))]
    slots = [k for k in checkpoint_keys if ".OPTIMIZER_SLOT" in k]
    if slots:
        raise ExportError(f"The export holds optimizer slots: {slots[:5]}")
    schema = model.schema
    # The rows of the schema's servable features, whatever the light processor reads.
    rows = light_table_lib.light_rows(
        schema, [f.name for f in schema.categorical if f.name not in schema.privileged]
    )
    dim = model.rocket_config.model.embedding_dim
    light = model.light_table()
    table = light_table_lib.expected_variables(light.name, rows, dim, dtype) if light else {}
    table_rows = rows if light else 0  # LR reads no embedding
    if model.light.first_order is not None and model.light.first_order.table.shape[0] != rows:
        raise ExportError(
            f"The light net's first-order table has {model.light.first_order.table.shape[0]} "
            f"rows; its servable features have {rows}."
        )
    expected = {name: shape for name, (shape, _) in table.items()}
    expected.update(
        {
            v.name: tuple(v.shape)
            for v in list(model.light_processor.variables) + list(model.light.variables)
        }
    )
    optimizer_names = {v.name for opt in model.all_optimizers for v in opt.variables()}
    variables = loaded_variables(loaded)
    found = {v.name: tuple(v.shape) for v in variables}
    training_only = (("booster", "booster"), ("distiller", "distillation-method (training-only)"))
    for role, what in training_only:
        held = sorted(n for n in found if variable_role(n) == role)
        if held:
            raise ExportError(f"The export holds {what} variables: {held}")
    in_optimizer = sorted(set(found) & optimizer_names)
    if in_optimizer:
        raise ExportError(f"The export holds optimizer variables: {in_optimizer}")
    not_light = sorted(n for n in found if variable_role(n) not in _LIGHT_ROLES)
    if not_light or found != expected or len(found) != len(variables):
        shapes = [(n, s, expected[n]) for n, s in found.items() if s != expected.get(n, s)]
        raise ExportError(
            "The export's variables are not exactly the light path's "
            f"({table_rows} light table rows x {dim}, {dtype}). "
            f"Unexpected: {sorted(set(found) - set(expected)) or not_light}; "
            f"missing: {sorted(set(expected) - set(found))}; "
            f"other shapes (found, expected): {shapes}"
        )
    for v in variables:
        if v.name in table and v.dtype != table[v.name][1]:
            raise ExportError(f"The export's {v.name} is {v.dtype.name}; expected {dtype}.")
    tower = sum(int(np.prod(v.shape)) for v in model.light.variables)
    tower += sum(int(np.prod(v.shape)) for v in model.light_processor.variables)
    count = sum(int(np.prod(v.shape)) for v in variables)
    wanted = table_rows * dim + (table_rows if dtype == "int8" else 0) + tower
    if count != wanted:
        raise ExportError(
            f"The export has {count} parameters; the light path has {wanted} "
            f"({table_rows} rows x {dim} + tower {tower})."
        )
    return count


def check_signatures(
    path: Path,
    loaded: Any,
    model: CoTrainModel,
    vectors: Mapping[str, VectorSignature],
    aliases: tuple[str, ...],
) -> None:
    """Raises ExportError unless the signatures are exactly the declared ones."""
    input_dtypes = serving_input_dtypes(model)
    forbidden = _forbidden_columns(model.schema)
    for name, signature in loaded.signatures.items():
        inputs = signature.structured_input_signature[1]
        if set(inputs) & forbidden:
            raise ExportError(
                f"Signature {name!r} takes privileged inputs {sorted(set(inputs) & forbidden)}"
            )
    scores = {k: (tf.float32, [None]) for k in OUTPUTS}
    wanted_inputs = {SERVING_SIGNATURE: set(input_dtypes), EXAMPLES_SIGNATURE: {EXAMPLES_INPUT}}
    wanted_outputs = {SERVING_SIGNATURE: scores, EXAMPLES_SIGNATURE: scores}
    for alias in aliases:
        wanted_inputs[alias], wanted_outputs[alias] = set(input_dtypes), scores
    for name, vector in vectors.items():
        wanted_inputs[name] = set(vector.input_dtypes)
        wanted_outputs[name] = {EMBEDDING_OUTPUT: (tf.float32, [None, vector.output_dim])}
    if set(loaded.signatures) != set(wanted_inputs):
        raise ExportError(
            f"The export has signatures {sorted(loaded.signatures)}; expected "
            f"{sorted(wanted_inputs)}"
        )
    for name, wanted in wanted_inputs.items():
        inputs = loaded.signatures[name].structured_input_signature[1]
        if set(inputs) != wanted:
            raise ExportError(
                f"Signature {name!r} takes {sorted(inputs)}; expected {sorted(wanted)}"
            )
        for key, spec in inputs.items():
            dtype = input_dtypes.get(key, tf.string)
            if spec.dtype != dtype or spec.shape.as_list() != [None]:
                raise ExportError(
                    f"Signature {name!r} input {key!r} is {spec}; expected {dtype.name} [None]"
                )
        outputs = loaded.signatures[name].structured_outputs
        if {k: (s.dtype, s.shape.as_list()) for k, s in outputs.items()} != wanted_outputs[name]:
            raise ExportError(
                f"Signature {name!r} returns {outputs}; expected {wanted_outputs[name]}"
            )
    parsed = parsed_example_keys(path)
    if parsed & forbidden or parsed != set(input_dtypes):
        raise ExportError(
            f"{EXAMPLES_SIGNATURE!r} parses {sorted(parsed)}; expected the serving columns "
            f"{sorted(input_dtypes)} and none of the privileged {sorted(forbidden)}"
        )


def _difference(served: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """|served - expected| per row; 0 where both are the same non-finite value (a diverged
    net exports faithfully; the export gate, not parity, refuses it)."""
    same = (served == expected) | (np.isnan(served) & np.isnan(expected))
    return np.where(same, 0.0, np.abs(served - expected))


def check_parity(
    loaded: Any,
    expected_probs: np.ndarray,
    features: Mapping[str, tf.Tensor],
    examples: list[bytes],
    vectors: Mapping[str, VectorSignature],
    aliases: tuple[str, ...],
) -> tuple[np.ndarray, float]:
    """Scores `features` with every signature of the reloaded export.

    Returns:
        (serving_default probabilities [N], the largest difference found).

    Raises:
        ExportError: a signature differs from `expected_probs` (or, for vectors, from the
            in-memory vectors) by more than PARITY_ATOL on some row.
    """
    served = loaded.signatures[SERVING_SIGNATURE](**features)["probabilities"].numpy()
    diffs = {SERVING_SIGNATURE: _difference(served, expected_probs)}
    scored = loaded.signatures[EXAMPLES_SIGNATURE](examples=tf.constant(examples))
    diffs[EXAMPLES_SIGNATURE] = _difference(scored["probabilities"].numpy(), expected_probs)
    for alias in aliases:
        probs = loaded.signatures[alias](**features)["probabilities"].numpy()
        diffs[alias] = _difference(probs, expected_probs)
    for name, vector in vectors.items():
        side = {c: features[c] for c in vector.input_dtypes}
        served_vectors = loaded.signatures[name](**side)[EMBEDDING_OUTPUT].numpy()
        expected_vectors = vector.fn(side).numpy()
        if served_vectors.shape != expected_vectors.shape:
            raise ExportError(
                f"{name} returns shape {served_vectors.shape}; the in-memory light net "
                f"{expected_vectors.shape}."
            )
        # Vectors are compared like probabilities: within PARITY_ATOL, row by row.
        diffs[name] = np.abs(served_vectors - expected_vectors).max(axis=1)
    for name, diff in diffs.items():
        if diff.shape != expected_probs.shape or not np.all(diff <= PARITY_ATOL):
            worst = int(np.nanargmax(diff)) if diff.size else -1
            raise ExportError(
                f"{name} of the reloaded export differs from the in-memory light net: max "
                f"|Δp| = {np.nanmax(diff) if diff.size else 'n/a'} at row {worst} (tolerance "
                f"{PARITY_ATOL}); shapes {diff.shape} vs {expected_probs.shape}."
            )
    worst = float(max(d.max() for d in diffs.values())) if expected_probs.size else 0.0
    return served, worst


def verify_export(
    saved_model_dir: str | Path,
    model: CoTrainModel,
    rows: Mapping[str, np.ndarray],
    example_dtypes: Mapping[str, tf.DType] | None = None,
    labels: np.ndarray | None = None,
    reference: light_table_lib.LightTable | None = None,
) -> dict[str, Any]:
    """Reloads an export and runs every check on it (see the module docstring).

    Args:
        saved_model_dir: the SavedModel directory.
        model: the in-memory model it was exported from; its config's
            `export.embedding_dtype` says how the export stores its rows.
        rows: {serving column: [N]} raw rows to score.
        example_dtypes: the tf.Example feature dtypes `predict_examples` was built with
            (default: the serving dtypes).
        labels: 0/1 [N] of `rows`, when they are labelled eval rows: the AUC/logloss change
            against the float32 light net is measured and, for bfloat16/int8, held to the
            dtype's tolerance (quality.py). Quantized exports need them.
        reference: for a bfloat16/int8 export, the quantized rows it was saved from (the
            exporter's `LightTable`): what the reloaded export must score like; made anew
            from the model when not given.

    Returns:
        (report, served): report is {"parameters", "parity_rows", "max_abs_diff",
        "embedding_dtype", "quality"} (quality is None without labels); served is the
        export's probabilities on `rows` [N] (what the export gate judges).

    Raises:
        ExportError: any check failed; the message says which and what was found.
    """
    path = Path(saved_model_dir)
    dtype = model.rocket_config.export.embedding_dtype
    if dtype != "float32" and labels is None:
        raise ExportError(
            f"export.embedding_dtype {dtype!r} needs labelled eval rows to check the AUC "
            "change, and none were given (the run has no eval data?). Export as float32."
        )
    if dtype == "float32":
        lookup, reference = None, None  # the training table itself: proves the slim remap
    else:
        reference = reference or light_table(model, dtype)
        lookup = reference.lookup if reference else None  # LR: no table to store
    vectors = model.light_signatures(lookup or (lambda ids, names: model.light_table()(ids)))
    aliases = model.light.serving_aliases
    loaded = tf.saved_model.load(str(path))
    count = check_variables(path, loaded, model, dtype)
    check_signatures(path, loaded, model, vectors, aliases)

    input_dtypes = serving_input_dtypes(model)
    features = {c: tf.constant(rows[c], dtype=input_dtypes[c]) for c in input_dtypes}
    float32_probs = tf.sigmoid(model.light_logits(features)).numpy()
    expected = float32_probs
    if lookup is not None:
        expected = tf.sigmoid(model.light_logits(features, lookup=lookup)).numpy()
    examples = serialize_examples(rows, example_dtypes or input_dtypes)
    served, worst = check_parity(loaded, expected, features, examples, vectors, aliases)
    quality = None if labels is None else quality_change(labels, float32_probs, served, dtype)
    report = {
        "parameters": count,
        "parity_rows": int(expected.shape[0]),
        "max_abs_diff": worst,
        "embedding_dtype": dtype,
        "quality": quality,
    }
    return report, served
