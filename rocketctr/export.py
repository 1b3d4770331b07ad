"""Light-only SavedModel export for TF Serving.

    <export_base>/<version>/saved_model.pb, variables/
    <export_base>/<version>/assets.extra/tf_serving_warmup_requests   (PredictionLog TFRecord)
    <export_base>/<version>/assets.extra/rocketctr.json               (schema, config, metrics)

The export is a `tf.Module` that holds the light path only: the light feature processor,
the embedding table the light net reads, and the light tower. Its signatures call
`CoTrainModel.light_logits` itself, so serving runs the training graph's ops
(docs/invariants.md, 5). Each version is written into a hidden temporary sibling, verified there
(no booster or optimizer variable, no privileged input, scores equal to the in-memory light
net), and only then renamed into place: TF Serving polls `<export_base>` and must never see
a half-written or unverified version.

Signatures (every tensor has the batch dimension first, shape [None]):
    serving_default: one input per raw serving column, DT_STRING for categorical source
        columns and DT_FLOAT for dense ones (missing = NaN, as readers deliver them).
    predict_examples: `examples`, serialized tf.Example protos. Features are parsed as
        bytes_list (categorical) and float_list (dense) by default; a missing feature is ""
        or NaN, exactly like an empty field in training data. Columns stored as another
        list type (TFX CsvExampleGen writes integer columns as int64_list) are declared
        with `example_dtypes` at export and converted like the TFRecord reader does.
    Both return `probabilities` (sigmoid) and `logits`, shape [None].
    A two-tower light net (tower `two_tower`, PFD+MD) also has
    score: the same as serving_default (all light columns -> probabilities, logits).
    user_embedding: the user-side raw columns (user and context features) -> `embedding`
        u [None, k].
    item_embedding: the item raw columns -> `embedding` v [None, k].
    score's logits are ⟨u, v⟩ + bias; the bias is recorded in rocketctr.json ("two_tower").
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

import rocketctr
from rocketctr.feature_format import feature_format
from rocketctr.flops import flops_per_example
from rocketctr.layers.features import FeatureProcessor
from rocketctr.model import CoTrainModel, variable_role
from rocketctr.rundir import (
    METRICS_FILE,
    RunFileError,
    load_run_config,
    read_run_file,
    restore_run,
)
from rocketctr.towers.two_tower import TwoTowerTower

log = logging.getLogger("rocketctr")

SERVING_SIGNATURE = "serving_default"
EXAMPLES_SIGNATURE = "predict_examples"
EXAMPLES_INPUT = "examples"
OUTPUTS = ("probabilities", "logits")
SCORE_SIGNATURE = "score"
USER_SIGNATURE = "user_embedding"
ITEM_SIGNATURE = "item_embedding"
EMBEDDING_OUTPUT = "embedding"
ASSETS_EXTRA = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
METADATA_FILE = "rocketctr.json"
DEFAULT_MODEL_NAME = "rocketctr"
PARITY_ATOL = 1e-5
WARMUP_ROWS = 100
PARITY_ROWS = 1000  # at most this many example rows are scored twice at export
_SYNTHETIC_PARITY_ROWS = 256
_LIGHT_ROLES = ("shared_embedding", "light_embedding", "light")
_EXAMPLE_DTYPES = (tf.string, tf.float32, tf.int64)


class ExportError(RuntimeError):
    """An export that was refused; no version directory was left behind."""


# ---------------------------------------------------------------------------------- module
class _TowerModule(tf.Module):
    """What a SavedModel holds: one tower's variables and two scoring signatures.

    Only the variables passed in are tracked, so only they are saved; a traced function
    that touched any other variable (say a booster weight) fails `tf.saved_model.save` with
    an "untracked resource" error instead of exporting it.

    Args:
        logits_fn: raw feature dict ({column: [B]}) -> logits [B], inference mode.
        embedding_variables: the embedding table(s) the tower reads.
        tower_variables: the tower's (and its feature processor's) variables.
        input_dtypes: {serving column: tf.string | tf.float32}, in signature order.
        example_dtypes: {serving column: how predict_examples parses it from a tf.Example}.
        vector_fns: two-tower only: {signature name: (raw features -> vectors [B, k],
            {column: dtype})} for `user_embedding` and `item_embedding`; `score` is then
            added as an alias of serving_default.
    """

    def __init__(
        self,
        logits_fn: Callable[[dict[str, tf.Tensor]], tf.Tensor],
        embedding_variables: Sequence[tf.Variable],
        tower_variables: Sequence[tf.Variable],
        input_dtypes: Mapping[str, tf.DType],
        example_dtypes: Mapping[str, tf.DType],
        vector_fns: Mapping[str, tuple[Callable, Mapping[str, tf.DType]]] | None = None,
    ) -> None:
        super().__init__(name="rocketctr_export")
        self.embedding_variables = list(embedding_variables)
        self.tower_variables = list(tower_variables)

        def outputs(features):
            logits = logits_fn(features)
            return {"probabilities": tf.sigmoid(logits), "logits": logits}

        specs = {c: tf.TensorSpec([None], dt, name=c) for c, dt in input_dtypes.items()}
        self.serve = tf.function(outputs, input_signature=[specs])

        def predict_examples(examples):
            return outputs(parse_examples(examples, input_dtypes, example_dtypes))

        self.predict_examples = tf.function(
            predict_examples,
            input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)],
        )
        self.vector_signatures = {}
        for name, (fn, dtypes) in (vector_fns or {}).items():
            side_specs = {c: tf.TensorSpec([None], dt, name=c) for c, dt in dtypes.items()}
            self.vector_signatures[name] = tf.function(
                _vector_outputs(fn), input_signature=[side_specs]
            )

    def signatures(self) -> dict:
        signatures = {SERVING_SIGNATURE: self.serve, EXAMPLES_SIGNATURE: self.predict_examples}
        if self.vector_signatures:
            signatures[SCORE_SIGNATURE] = self.serve
            signatures.update(self.vector_signatures)
        return signatures


def _vector_outputs(fn: Callable[[dict[str, tf.Tensor]], tf.Tensor]) -> Callable:
    def outputs(features):
        return {EMBEDDING_OUTPUT: fn(features)}

    return outputs


def parse_examples(
    examples: tf.Tensor,
    input_dtypes: Mapping[str, tf.DType],
    example_dtypes: Mapping[str, tf.DType],
) -> dict[str, tf.Tensor]:
    """Serialized tf.Example [B] -> raw serving features, as `serving_default` takes them.

    A missing feature becomes "" (string columns) or NaN (float columns), exactly what the
    readers deliver for an empty field. A feature stored with another list type than its
    serving dtype is converted the way `rocketctr.data`'s TFRecord reader converts it:
    int64/float values of a string column become their (shortest) decimal text, so `123` is
    hashed like the field "123"; bytes of a float column are parsed as a number.

    Args:
        examples: serialized tf.Example protos, shape [B].
        input_dtypes: {column: serving dtype (tf.string or tf.float32)}.
        example_dtypes: {column: list type of the column's tf.Example feature}.

    Returns:
        {column: [B]} with the serving dtypes.
    """
    # Ragged for every column: a feature may be absent, or present with an empty value list
    # (CsvExampleGen writes empty CSV fields that way); both mean "missing", as in training.
    spec = {column: tf.io.RaggedFeature(dtype) for column, dtype in example_dtypes.items()}
    parsed = tf.io.parse_example(examples, spec)
    features = {}
    for column, serving_dtype in input_dtypes.items():
        value = parsed[column]
        stored = example_dtypes[column]
        lengths = value.row_lengths()
        # FixedLenFeature would refuse a second value; refuse it here too, never drop it.
        check = tf.debugging.assert_less_equal(
            lengths, tf.constant(1, lengths.dtype),
            message=f"tf.Example feature {column!r} has more than one value",
        )  # fmt: skip
        default = "" if stored == tf.string else tf.zeros([], stored)
        with tf.control_dependencies([check]):
            first = value.to_tensor(default_value=default, shape=[None, 1])[:, 0]
        present = lengths > 0
        if serving_dtype == tf.string:
            if stored != tf.string:
                first = tf.strings.as_string(first, shortest=stored == tf.float32)
            value = tf.where(present, first, "")
        elif stored == tf.string:  # bad text fails the request (StringToNumber error)
            value = tf.strings.to_number(tf.where(present & (first != ""), first, "nan"))
        else:
            value = tf.where(present, tf.cast(first, tf.float32), math.nan)
        features[column] = value
    return features


def serving_input_dtypes(model: CoTrainModel) -> dict[str, tf.DType]:
    """{raw serving column: tf.string | tf.float32}, in the order of the signature inputs."""
    schema = model.schema
    return {
        c: tf.string if schema.is_string_column(c) else tf.float32
        for c in model.light_processor.input_columns
    }


def _resolve_example_dtypes(
    schema, input_dtypes: Mapping[str, tf.DType], overrides: Mapping[str, Any] | None
) -> dict[str, tf.DType]:
    """Serving dtypes, overridden per column; schema columns that are not served (label,
    privileged) are ignored, so a TFRecord reader's inferred dtypes can be passed as is."""
    overrides = {c: tf.as_dtype(d) for c, d in (overrides or {}).items()}
    unknown = sorted(set(overrides) - set(schema.columns))
    if unknown:
        raise ExportError(
            f"example_dtypes names columns that are not in schema {schema.name!r}: {unknown}. "
            f"Serving columns: {list(input_dtypes)}"
        )
    for column, dtype in overrides.items():
        if dtype not in _EXAMPLE_DTYPES:
            raise ExportError(
                f"example_dtypes[{column!r}] must be one of string, float32, int64. "
                f"Received: {dtype.name}"
            )
    return {c: overrides.get(c, dt) for c, dt in input_dtypes.items()}


def is_two_tower(model: CoTrainModel) -> bool:
    return isinstance(model.light, TwoTowerTower)


def two_tower_vector_fns(
    model: CoTrainModel,
) -> dict[str, tuple[Callable[[dict[str, tf.Tensor]], tf.Tensor], dict[str, tf.DType]]]:
    """{user_embedding | item_embedding: (raw side columns -> [B, k], {column: dtype})}.

    Each side gets a `FeatureProcessor` over its own features: the same ops and embedding
    rows as the light processor, so ⟨user, item⟩ + bias equals the light logits.
    """
    schema, table = model.schema, model.light_embedding or model.embedding
    fns = {}
    for name, features, vector in (
        (USER_SIGNATURE, schema.user_side_features(), model.light.user_vector),
        (ITEM_SIGNATURE, list(schema.item_features), model.light.item_vector),
    ):
        processor = FeatureProcessor(schema, features, name=name.replace("embedding", "features"))

        def fn(raw, processor=processor, vector=vector):
            ids, dense = processor(raw)
            return vector(table(ids), dense, training=False)

        dtypes = {
            c: tf.string if schema.is_string_column(c) else tf.float32
            for c in processor.input_columns
        }
        fns[name] = (fn, dtypes)
    return fns


def _light_parts(model: CoTrainModel):
    table = model.light_embedding or model.embedding
    tower_vars = list(model.light_processor.variables) + list(model.light.variables)
    return model.light_logits, list(table.variables), tower_vars, serving_input_dtypes(model)


def _booster_parts(model: CoTrainModel):
    def booster_logits(features):
        ids, dense = model.processor(features)
        return model.booster(model.embedding(ids), dense, training=False)

    schema = model.schema
    dtypes = {
        c: tf.string if schema.is_string_column(c) else tf.float32
        for c in model.processor.input_columns
    }
    tower_vars = list(model.processor.variables) + list(model.booster.variables)
    return booster_logits, list(model.embedding.variables), tower_vars, dtypes


def _build_module(
    model: CoTrainModel, tower: str, example_dtypes: Mapping[str, tf.DType] | None = None
) -> _TowerModule:
    logits_fn, table_vars, tower_vars, dtypes = (
        _light_parts(model) if tower == "light" else _booster_parts(model)
    )
    vector_fns = two_tower_vector_fns(model) if tower == "light" and is_two_tower(model) else None
    return _TowerModule(
        logits_fn, table_vars, tower_vars, dtypes, example_dtypes or dtypes, vector_fns
    )


def _export_tower(model: CoTrainModel, export_dir: str | Path, tower: str = "booster") -> Path:
    """Saves one tower's scoring path unverified. For latency comparisons ONLY.

    The product never serves the booster: `export_light` is the only export entry point.
    `benchmarks/serving_latency.py` uses this to time the booster with the same signature
    machinery as the light net.
    """
    if tower not in ("light", "booster"):
        raise ValueError(f"tower must be 'light' or 'booster'. Received: {tower!r}")
    if not getattr(model, f"has_{tower}"):
        raise ExportError(
            f"The model has no {tower} tower (mode {model.rocket_config.distill.mode!r})."
        )
    module = _build_module(model, tower)
    export_dir = Path(export_dir)
    tf.saved_model.save(module, str(export_dir), signatures=module.signatures())
    return export_dir


def _save(module: _TowerModule, path: Path) -> None:
    try:
        tf.saved_model.save(module, str(path), signatures=module.signatures())
    except AssertionError as e:
        if "untracked" not in str(e):
            raise
        raise ExportError(
            "The light scoring path reads a variable that is not part of the light path "
            "(a booster weight?); refusing to export it."
        ) from e


# ------------------------------------------------------------------------------ versions
def next_version(export_base: str | Path) -> int:
    """1 + the largest numeric version directory under `export_base` (1 if there is none)."""
    base = Path(export_base)
    if not base.is_dir():
        return 1
    versions = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export_light(
    model: CoTrainModel,
    export_base: str | Path,
    *,
    example_features: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    example_dtypes: Mapping[str, Any] | None = None,
    model_name: str = DEFAULT_MODEL_NAME,
) -> Path:
    """Exports the light net as a new numeric version under `export_base`, verified.

    Args:
        model: a (trained) co-training model with a light tower.
        export_base: the directory TF Serving watches (`--model_base_path`).
        example_features: real raw rows, {column: [N]} as readers deliver them (extra
            columns such as privileged ones or the label are ignored). The first
            `WARMUP_ROWS` become the warmup requests; up to `PARITY_ROWS` are scored by
            the in-memory and the reloaded model, which must agree within `PARITY_ATOL`.
            Without them there is no warmup file and parity is checked on synthetic rows.
        metadata: recorded in `assets.extra/rocketctr.json` (e.g. eval metrics).
        example_dtypes: {column: "int64" | "string" | "float32"}, the tf.Example list type
            `predict_examples` parses for that column (e.g. int64 for the integer columns
            TFX CsvExampleGen writes); the default is bytes_list for categorical source
            columns and float_list for dense ones. Columns of the schema that are not
            served (label, privileged) are ignored.
        model_name: the TF Serving model name written into the warmup requests.

    Returns:
        The version directory, `<export_base>/<version>`.

    Raises:
        ExportError: the model has no light tower, the example rows lack serving columns,
            or verification failed (booster/optimizer variable, privileged input, wrong
            parameter count, scores differ). Nothing is left under `export_base` then.
    """
    if not model.has_light:
        raise ExportError(
            "The model has no light net to export (distill.mode "
            f"{model.rocket_config.distill.mode!r}). Train with mode co_train or light_only."
        )
    input_dtypes = serving_input_dtypes(model)
    parse_dtypes = _resolve_example_dtypes(model.schema, input_dtypes, example_dtypes)
    module = _build_module(model, "light", parse_dtypes)
    rows = _as_numpy_rows(example_features, input_dtypes) if example_features is not None else None

    base = Path(export_base)
    base.mkdir(parents=True, exist_ok=True)
    version = next_version(base)
    final = base / str(version)
    # Hidden and non-numeric: TF Serving ignores it while it is being written.
    tmp = base / f".tmp-{version}-{os.getpid()}"
    try:
        _save(module, tmp)
        extra = tmp / ASSETS_EXTRA
        extra.mkdir()
        if rows is not None:
            _write_warmup(extra / WARMUP_FILE, rows, input_dtypes, model_name, WARMUP_ROWS)
        parity_rows = rows if rows is not None else _synthetic_rows(input_dtypes)
        report = verify_export(tmp, model, parity_rows, parse_dtypes)
        info = _export_info(model, version, metadata, parse_dtypes, report)
        (extra / METADATA_FILE).write_text(json.dumps(info, indent=2, default=_json_default))
        if final.exists():
            raise ExportError(f"{final} appeared while exporting (another exporter?).")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("Exported the light net to %s", final)
    return final


def restore_model(model_dir: str | Path) -> tuple[CoTrainModel, dict[str, Any]]:
    """Builds the model of a training run and restores its latest checkpoint.

    Args:
        model_dir: a `rocketctr train` model dir (config.yaml, checkpoints/, metrics.json).

    Returns:
        (model, info): info holds the checkpoint path, global step, completed epochs, the
        model dir and, when metrics.json exists, its metrics.

    Raises:
        ExportError: `model_dir` has no config.yaml or no checkpoint.
    """
    model_dir = Path(model_dir)
    model, _, latest, epochs = restore_run(model_dir, error=ExportError)
    info: dict[str, Any] = {
        "checkpoint": latest,
        "global_step": int(model.global_step.numpy()),
        "completed_epochs": epochs,
        "model_dir": str(model_dir.resolve()),
    }
    metrics_path = model_dir / METRICS_FILE
    if metrics_path.exists():
        try:
            info["metrics"] = read_run_file(metrics_path)
        except RunFileError as e:  # informational only: the export does not depend on it
            print(f"WARNING: {e} The export's metadata will have no metrics.")
    return model, info


def export_from_model_dir(
    model_dir: str | Path,
    export_base: str | Path,
    *,
    example_features: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    example_dtypes: Mapping[str, Any] | None = None,
    model_name: str = DEFAULT_MODEL_NAME,
) -> Path:
    """Restores the latest checkpoint of a training run and exports its light net.

    Args:
        model_dir: a `rocketctr train` model dir (config.yaml, checkpoints/, metrics.json).
        export_base: the directory TF Serving watches.
        example_features: as for `export_light`.
        metadata: merged over the run's info (checkpoint, global_step, completed_epochs,
            model_dir, and "metrics" from metrics.json when present).
        example_dtypes: as for `export_light`.
        model_name: as for `export_light`.

    Returns:
        The new version directory.

    Raises:
        ExportError: no config or checkpoint in `model_dir`, the run has no light net
            (distill.mode booster_only), or `export_light` refused the export.
    """
    try:
        config = load_run_config(Path(model_dir))
    except RunFileError as e:
        raise ExportError(str(e)) from None
    if config.distill.mode == "booster_only":
        raise ExportError(
            f"{model_dir} was trained with distill.mode 'booster_only': it has no light net, "
            "and the booster is never exported."
        )
    model, info = restore_model(model_dir)
    info.update(metadata or {})
    return export_light(
        model, export_base, example_features=example_features, metadata=info,
        example_dtypes=example_dtypes, model_name=model_name,
    )  # fmt: skip


# ---------------------------------------------------------------------------- verification
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


def verify_export(
    saved_model_dir: str | Path,
    model: CoTrainModel,
    rows: Mapping[str, np.ndarray],
    example_dtypes: Mapping[str, tf.DType] | None = None,
) -> dict[str, Any]:
    """Reloads an export and checks guarantees 3 and 4 of docs/invariants.md on it.

    Checks: every variable is a light-path variable (no `booster` role, no optimizer slot,
    exactly the light path's names and shapes, same parameter count); the signatures take
    exactly the serving columns and no privileged input; `serving_default` and
    `predict_examples` score `rows` like `model.light_logits` within `PARITY_ATOL`.

    Args:
        saved_model_dir: the SavedModel directory.
        model: the in-memory model it was exported from.
        rows: {serving column: [N]} raw rows to score.
        example_dtypes: the tf.Example feature dtypes `predict_examples` was built with
            (default: the serving dtypes).

    Returns:
        {"parameters": int, "parity_rows": int, "max_abs_diff": float}.

    Raises:
        ExportError: any check failed; the message says which and what was found.
    """
    path = Path(saved_model_dir)
    checkpoint_keys = [k for k, _ in tf.train.list_variables(str(path / "variables" / "variables"))]
    slots = [k for k in checkpoint_keys if ".OPTIMIZER_SLOT" in k]
    if slots:
        raise ExportError(f"The export holds optimizer slots: {slots[:5]}")

    table = model.light_embedding or model.embedding
    expected = {
        v.name: tuple(v.shape)
        for v in list(table.variables) + list(model.light_processor.variables)
        + list(model.light.variables)
    }  # fmt: skip
    optimizer_names = {v.name for opt in model.all_optimizers for v in opt.variables()}
    loaded = tf.saved_model.load(str(path))
    descendants = tf.train.TrackableView(loaded).descendants()
    variables = list({id(t): t for t in descendants if isinstance(t, tf.Variable)}.values())
    found = {v.name: tuple(v.shape) for v in variables}
    booster = sorted(n for n in found if variable_role(n) == "booster")
    if booster:
        raise ExportError(f"The export holds booster variables: {booster}")
    in_optimizer = sorted(set(found) & optimizer_names)
    if in_optimizer:
        raise ExportError(f"The export holds optimizer variables: {in_optimizer}")
    not_light = sorted(n for n in found if variable_role(n) not in _LIGHT_ROLES)
    if not_light or found != expected or len(found) != len(variables):
        raise ExportError(
            "The export's variables are not exactly the light path's. "
            f"Unexpected: {sorted(set(found) - set(expected)) or not_light}; "
            f"missing: {sorted(set(expected) - set(found))}"
        )
    count = sum(int(np.prod(v.shape)) for v in variables)
    light_count = sum(int(np.prod(s)) for s in expected.values())
    if count != light_count:
        raise ExportError(f"The export has {count} parameters; the light path has {light_count}.")

    input_dtypes = serving_input_dtypes(model)
    forbidden = _forbidden_columns(model.schema)
    for name, signature in loaded.signatures.items():
        inputs = signature.structured_input_signature[1]
        if set(inputs) & forbidden:
            raise ExportError(
                f"Signature {name!r} takes privileged inputs {sorted(set(inputs) & forbidden)}"
            )
    wanted_inputs = {SERVING_SIGNATURE: set(input_dtypes), EXAMPLES_SIGNATURE: {EXAMPLES_INPUT}}
    wanted_outputs = {n: {k: (tf.float32, [None]) for k in OUTPUTS} for n in wanted_inputs}
    vector_fns = two_tower_vector_fns(model) if is_two_tower(model) else {}
    if vector_fns:
        wanted_inputs[SCORE_SIGNATURE] = set(input_dtypes)
        wanted_outputs[SCORE_SIGNATURE] = wanted_outputs[SERVING_SIGNATURE]
        k = model.light.config.output_dim
        for name, (_, dtypes) in vector_fns.items():
            wanted_inputs[name] = set(dtypes)
            wanted_outputs[name] = {EMBEDDING_OUTPUT: (tf.float32, [None, k])}
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

    features = {c: tf.constant(rows[c], dtype=input_dtypes[c]) for c in input_dtypes}
    expected_probs = tf.sigmoid(model.light_logits(features)).numpy()
    served = loaded.signatures[SERVING_SIGNATURE](**features)
    diffs = {SERVING_SIGNATURE: np.abs(served["probabilities"].numpy() - expected_probs)}
    examples = serialize_examples(rows, example_dtypes or input_dtypes)
    scored = loaded.signatures[EXAMPLES_SIGNATURE](examples=tf.constant(examples))
    diffs[EXAMPLES_SIGNATURE] = np.abs(scored["probabilities"].numpy() - expected_probs)
    for name, (fn, dtypes) in vector_fns.items():
        side = {c: features[c] for c in dtypes}
        served_vectors = loaded.signatures[name](**side)[EMBEDDING_OUTPUT].numpy()
        expected_vectors = fn(side).numpy()
        if served_vectors.shape != expected_vectors.shape:
            raise ExportError(
                f"{name} returns shape {served_vectors.shape}; the in-memory light net "
                f"{expected_vectors.shape}."
            )
        # Vectors are compared like probabilities: within PARITY_ATOL, row by row.
        diffs[name] = np.abs(served_vectors - expected_vectors).max(axis=1)
    if vector_fns:
        served = loaded.signatures[SCORE_SIGNATURE](**features)
        diffs[SCORE_SIGNATURE] = np.abs(served["probabilities"].numpy() - expected_probs)
    for name, diff in diffs.items():
        if diff.shape != expected_probs.shape or not np.all(diff <= PARITY_ATOL):
            worst = int(np.nanargmax(diff)) if diff.size else -1
            raise ExportError(
                f"{name} of the reloaded export differs from the in-memory light net: max "
                f"|Δp| = {np.nanmax(diff) if diff.size else 'n/a'} at row {worst} (tolerance "
                f"{PARITY_ATOL}); shapes {diff.shape} vs {expected_probs.shape}."
            )
    return {
        "parameters": count,
        "parity_rows": int(expected_probs.shape[0]),
        "max_abs_diff": float(max(d.max() for d in diffs.values())) if expected_probs.size else 0.0,
    }


# ------------------------------------------------------------------------ rows and protos
def _as_numpy_rows(
    features: Mapping[str, Any], input_dtypes: Mapping[str, tf.DType]
) -> dict[str, np.ndarray]:
    missing = [c for c in input_dtypes if c not in features]
    if missing:
        raise ExportError(
            f"example_features lack serving columns {missing}; received {sorted(features)}"
        )
    rows = {}
    for column, dtype in input_dtypes.items():
        value = features[column]
        value = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
        value = value.reshape(-1)
        if dtype == tf.string:
            rows[column] = np.array(
                [v if isinstance(v, bytes) else str(v).encode() for v in value], dtype=object
            )
        else:
            rows[column] = value.astype(np.float32)
    sizes = {len(v) for v in rows.values()}
    if len(sizes) != 1:
        raise ExportError(f"example_features columns have different lengths: {sorted(sizes)}")
    n = sizes.pop()
    if n == 0:
        raise ExportError("example_features has no rows.")
    return {c: v[:PARITY_ROWS] for c, v in rows.items()}


def _synthetic_rows(input_dtypes: Mapping[str, tf.DType], seed: int = 0) -> dict[str, np.ndarray]:
    """Rows covering the awkward values: missing, negative, huge, repeated, unseen text."""
    rng = np.random.default_rng(seed)
    n = _SYNTHETIC_PARITY_ROWS
    rows = {}
    for column, dtype in input_dtypes.items():
        if dtype == tf.string:
            values = rng.integers(0, 1000, n).astype(str).astype(object)
            values[rng.random(n) < 0.1] = ""
            rows[column] = np.array([v.encode() for v in values], dtype=object)
        else:
            values = rng.lognormal(1.0, 2.0, n) * rng.choice([-1.0, 1.0], n, p=[0.1, 0.9])
            values[rng.random(n) < 0.1] = math.nan
            rows[column] = values.astype(np.float32)
    return rows


def serialize_examples(
    rows: Mapping[str, np.ndarray], example_dtypes: Mapping[str, tf.DType]
) -> list[bytes]:
    """Raw rows -> serialized tf.Example protos; "" and NaN become absent (missing) features.

    Args:
        rows: {column: [N]} raw values (bytes/str for string columns, floats for dense).
        example_dtypes: {column: tf.string | tf.float32 | tf.int64}, the feature list type.

    Returns:
        N serialized tf.Example protos.

    Raises:
        ExportError: a value the declared list type cannot carry (int64: 1.5, "abc", "007";
            float32: "abc"). Values that convert but would not score the same (text "1.50"
            read back as "1.5") are left to the parity check.
    """
    n = len(next(iter(rows.values())))
    out = []
    for i in range(n):
        feature = {}
        for column, dtype in example_dtypes.items():
            value = rows[column][i]
            if isinstance(value, bytes):
                value = value.decode()
            if value == "" or (isinstance(value, float | np.floating) and math.isnan(value)):
                continue
            if dtype == tf.string:
                feature[column] = tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[str(value).encode()])
                )
            elif dtype == tf.float32:
                feature[column] = tf.train.Feature(
                    float_list=tf.train.FloatList(value=[_as_float(value, column)])
                )
            else:
                feature[column] = tf.train.Feature(
                    int64_list=tf.train.Int64List(value=[_as_int64(value, column)])
                )
        out.append(
            tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
        )
    return out


def _as_float(value: Any, column: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ExportError(
            f"Column {column!r} is declared float32 in tf.Examples, but the value {value!r} "
            "is not a number."
        ) from None


def _as_int64(value: Any, column: str) -> int:
    """The int an int64 feature carries for `value`, if it represents `value` exactly."""
    try:
        number = int(value) if isinstance(value, str) else int(float(value))
    except ValueError:
        number = None
    exact = number is not None and (
        str(number) == value.strip() if isinstance(value, str) else number == float(value)
    )
    if not exact:
        raise ExportError(
            f"Column {column!r} is declared int64 in tf.Examples, but the value {value!r} is "
            "not an integer an int64 feature can carry exactly."
        )
    return number


def _write_warmup(
    path: Path,
    rows: Mapping[str, np.ndarray],
    input_dtypes: Mapping[str, tf.DType],
    model_name: str,
    num_rows: int,
) -> int:
    """Writes PredictionLog records TF Serving replays before it serves a version.

    One single-row request (the common online shape) and the rest of the first `num_rows`
    rows in three batched requests, so the batch-1 and batched code paths are both warm.
    """
    n = min(num_rows, len(next(iter(rows.values()))))
    bounds = [0, 1] + [int(b) for b in np.linspace(1, n, 4)[1:]] if n > 1 else [0, 1]
    chunks = [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    with tf.io.TFRecordWriter(str(path)) as writer:
        for start, stop in chunks:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SERVING_SIGNATURE)
            )
            for column, dtype in input_dtypes.items():
                request.inputs[column].CopyFrom(
                    tf.make_tensor_proto(rows[column][start:stop], dtype=dtype)
                )
            record = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(record.SerializeToString())
    return len(chunks)


# ------------------------------------------------------------------------------- metadata
def _count(variables) -> int:
    return sum(int(np.prod(v.shape)) for v in variables)


def parameter_counts(model: CoTrainModel) -> dict[str, dict[str, int] | None]:
    """Parameters of each scoring path: embedding table(s) + tower (+ processor)."""
    counts: dict[str, dict[str, int] | None] = {"light": None, "booster": None}
    if model.has_light:
        table = _count((model.light_embedding or model.embedding).variables)
        tower = _count(model.light.variables) + _count(model.light_processor.variables)
        counts["light"] = {"embedding": table, "tower": tower, "total": table + tower}
    if model.has_booster:
        table = _count(model.embedding.variables)
        tower = _count(model.booster.variables) + _count(model.processor.variables)
        counts["booster"] = {"embedding": table, "tower": tower, "total": table + tower}
    return counts


def tower_flops(model: CoTrainModel) -> dict[str, int | None]:
    """Analytic FLOPs per example of each tower present (see rocketctr.flops)."""
    dim = model.rocket_config.model.embedding_dim
    out: dict[str, int | None] = {"light": None, "booster": None}
    if model.has_light:
        out["light"] = flops_per_example(model.light, len(model.light_processor.categorical), dim)
    if model.has_booster:
        out["booster"] = flops_per_example(model.booster, len(model.processor.categorical), dim)
    return out


def _export_info(model, version, metadata, example_dtypes, report) -> dict[str, Any]:
    schema = model.schema
    input_dtypes = serving_input_dtypes(model)
    example_spec = {c: dt.name for c, dt in example_dtypes.items()}
    info = {
        "format_version": 1,
        "rocketctr_version": rocketctr.__version__,
        "tensorflow_version": tf.__version__,
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "version": version,
        "tower": "light",
        # How raw values became table rows in training; the graph here applies the same.
        "feature_format": feature_format(),
        "schema": {
            "name": schema.name,
            "source": schema.source,
            "serving_columns": [{"name": c, "dtype": dt.name} for c, dt in input_dtypes.items()],
            "privileged_not_served": list(schema.privileged),
        },
        "signatures": {
            SERVING_SIGNATURE: {
                "inputs": {c: dt.name for c, dt in input_dtypes.items()},
                "outputs": {o: "float32" for o in OUTPUTS},
                "missing": "string columns: '' ; float columns: NaN",
            },
            EXAMPLES_SIGNATURE: {
                "inputs": {EXAMPLES_INPUT: "string (serialized tf.Example)"},
                "example_feature_dtypes": example_spec,
                "outputs": {o: "float32" for o in OUTPUTS},
                "missing": "an absent feature is parsed as '' (string) or NaN (float)",
            },
        },
        "config": model.rocket_config.to_dict(),
        "metadata": dict(metadata or {}),
        "parameters": parameter_counts(model),
        "flops_per_example": {
            **tower_flops(model),
            "method": "analytic from layer shapes (rocketctr.flops): 2*in*out per Dense "
            "kernel + cross/CIN/FM element-wise ops; no bias, activation or lookup cost",
        },
        "verification": report,
    }
    if is_two_tower(model):
        k = model.light.config.output_dim
        for name, (_, dtypes) in two_tower_vector_fns(model).items():
            info["signatures"][name] = {
                "inputs": {c: dt.name for c, dt in dtypes.items()},
                "outputs": {EMBEDDING_OUTPUT: f"float32 [None, {k}]"},
            }
        info["signatures"][SCORE_SIGNATURE] = dict(info["signatures"][SERVING_SIGNATURE])
        info["two_tower"] = {
            "output_dim": k,
            "bias": float(model.light.bias.numpy()),
            "logits": "sum(user_embedding * item_embedding) + bias",
            "user_columns": list(two_tower_vector_fns(model)[USER_SIGNATURE][1]),
            "item_columns": list(two_tower_vector_fns(model)[ITEM_SIGNATURE][1]),
        }
    return info


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"Not JSON serializable in export metadata: {type(value).__name__}")


def read_export_info(version_dir: str | Path) -> dict[str, Any]:
    """The `assets.extra/rocketctr.json` of an exported version."""
    return json.loads((Path(version_dir) / ASSETS_EXTRA / METADATA_FILE).read_text())
