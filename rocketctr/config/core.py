"""The one config schema: frozen dataclasses, serialized as YAML.

A YAML config file is a serialized `Config`. `Config.from_dict` rejects unknown keys and
wrong types with a message naming the key path, so a typo never silently falls back to a
default.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rocketctr.config import yaml_files
from rocketctr.files import write_atomically


class ConfigError(ValueError):
    """A config file or override that does not match the schema."""


# The choices of the config's string keys (a tower's, a method's and a schema's are theirs).
MODES = ("co_train", "light_only", "booster_only")  # distill.mode
# light_distill: the light net's validation distillation loss, Σ_m weight_m · loss_m over
# distill.methods (Zhu et al., CIKM 2020, stop by it): the epoch it learned its teacher best.
SELECTION_METRICS = ("light_auc", "light_bce", "light_distill", "booster_auc", "booster_bce")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "parameter_server")
OPTIMIZERS = ("adam", "lazy_adam", "adagrad", "sgd", "ftrl")  # rocketctr/model/optimizers.py
RAMPS = ("linear", "step")  # distill.ramp
BOOSTER_MIXTURES = ("mean", "gated")  # model.booster_mixture
PRECISIONS = ("auto", "bfloat16", "float32")  # train.mixed_precision


@dataclass(frozen=True)
class TowerConfig:
    """A tower: its registered architecture name. Each tower's `Config`, a subclass in its
    own module (rocketctr/towers/), adds the knobs it reads and their `CHECKS`; a config
    section names the tower and sets its knobs, and loads as that tower's `Config`."""

    name: str


@dataclass(frozen=True)
class OptimizerConfig:
    name: str  # adam | lazy_adam | adagrad | sgd | ftrl
    learning_rate: float
    # Linear warm-up: the rate grows from learning_rate / warmup_steps at the first step to
    # learning_rate at step warmup_steps (0 = none). Plateau decay and resume compose with it.
    warmup_steps: int = 0
    # Gradient clipping before the update (None = none): each variable's gradient to this
    # norm (clipnorm), or all of the group's gradients jointly (global_clipnorm); not both.
    clipnorm: float | None = None
    global_clipnorm: float | None = None


@dataclass(frozen=True)
class LightConfig(TowerConfig):
    """One light net of `model.lights`: its tower, and how it trains. A light net's section
    loads as its tower's `Config` with these two knobs added (`light_config_class`).

    `optimizer` and `embedding_gradient_scale` default to `train.light_optimizer` (else
    `train.dense_optimizer`) and `model.light_embedding_gradient_scale`.
    """

    optimizer: OptimizerConfig | None = None
    embedding_gradient_scale: float | None = None


# The name of the light net of a config that sets `model.light` (one light net): its
# variables, metrics (`light_auc`) and files keep the names they had before `model.lights`.
SINGLE_LIGHT = "light"
# Names a light net cannot take: they name other parts of the model or its metrics.
_RESERVED_LIGHT_NAMES = (
    "booster",
    "loss",
    "hint_weight",
    "distiller",
    "features",
    "embedding",
    "shared_embedding",
    "optimizer",
)
_LIGHT_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}")


@dataclass(frozen=True)
class ModelConfig:
    embedding_dim: int = 16
    booster: TowerConfig = field(
        default_factory=lambda: tower_config({"name": "dcn", "hidden_units": [256, 128, 64]})
    )
    # ... or an ensemble of boosters, by name (two or more, say dcn and xdeepfm): each its own
    # tower on the shared tables, each trained on the labels alone; the light nets learn
    # from their mixture (`booster_mixture`). Set, it replaces `booster`.
    boosters: dict[str, TowerConfig] = field(default_factory=dict)
    # How an ensemble's boosters make one teacher: "mean" of their logits, or "gated", a
    # per-example softmax mixture of their logits (teacher gating, Zhu et al., CIKM 2020)
    # whose gate reads the batch's embeddings and learns from the labels alone, through
    # neither the boosters nor the tables.
    booster_mixture: str = "mean"
    # One light net ...
    light: TowerConfig = field(
        default_factory=lambda: tower_config({"name": "mlp", "hidden_units": [32]})
    )
    # ... or several, by name (a frontier of sizes): each its own tower, optimizer and
    # gradient scale, all on the shared tables, all taught by the same teacher. Set, it
    # replaces `light`.
    lights: dict[str, LightConfig] = field(default_factory=dict)
    # Ablation: give the light net its own embedding tables instead of sharing the booster's.
    separate_light_embeddings: bool = False
    # With a booster, how much of the light net's gradient (label and hint losses) reaches
    # the shared tables: 1 = all of it (Rocket Launching); 0 = none, the light net reads the
    # booster's rows as they are and the booster trains exactly as it would alone; in
    # between, the light net's pull on the shared rows is scaled down (forward pass
    # unchanged). See the README's quality section.
    light_embedding_gradient_scale: float = 1.0
    # L2 on the embedding rows a batch looks up (per example, summed over fields): cheap,
    # updates stay sparse.
    embedding_l2: float = 0.0
    # L2 on the whole embedding tables, (embedding_table_l2 / 2) · ||E||² per step (weight
    # decay, the form FuxiCTR/BARS use): it also shrinks rows the batch does not read, so
    # every step updates every row. A strong regulariser for small tables (Frappe); costly
    # on tables of millions of rows.
    embedding_table_l2: float = 0.0
    # Standard deviation of the normal the embedding rows start from. Rows that start
    # small keep an FM's pairwise term (a product of two rows) small for many steps.
    embedding_init_stddev: float = 0.01

    def __post_init__(self) -> None:
        for name in self.lights:
            if (
                not _LIGHT_NAME.fullmatch(name)
                or name in _RESERVED_LIGHT_NAMES
                or name.startswith("booster_")
            ):
                raise ConfigError(
                    f"Config key model.lights.{name}: a light net's name must be lower-case "
                    "letters, digits and _ (starting with a letter, at most 31), not start "
                    f"with booster_, and not be one of {list(_RESERVED_LIGHT_NAMES)}."
                )
        for name in self.boosters:
            if not _LIGHT_NAME.fullmatch(name) or name == "gate":
                raise ConfigError(
                    f"Config key model.boosters.{name}: a booster's name must be lower-case "
                    "letters, digits and _ (starting with a letter, at most 31), and not gate."
                )
        if self.boosters:
            if len(self.boosters) < 2:
                raise ConfigError(
                    "Config key model.boosters names an ensemble of two or more boosters; "
                    "for one, set model.booster."
                )
            if self.booster != _default_field(ModelConfig, "booster"):
                raise ConfigError(
                    "Config sets both model.booster and model.boosters: model.boosters names "
                    "every booster; move the model.booster tower into it (or drop "
                    "model.boosters)."
                )
        elif self.booster_mixture != "mean":
            raise ConfigError(
                f"Config key model.booster_mixture ({self.booster_mixture!r}) mixes the "
                "boosters of model.boosters; this config has one booster."
            )
        default_light = _default_field(ModelConfig, "light")
        if self.lights and self.light != default_light:
            raise ConfigError(
                "Config sets both model.light and model.lights: model.lights names every light "
                "net; move the model.light tower into it (or drop model.lights)."
            )
        if self.lights and self.separate_light_embeddings and len(self.lights) > 1:
            raise ConfigError(
                "model.separate_light_embeddings is an ablation of one light net; "
                f"model.lights names {len(self.lights)}."
            )

    def light_nets(self) -> dict[str, LightConfig]:
        """The light nets by name: `lights`, or `light` under the name "light"."""
        if self.lights:
            return dict(self.lights)
        fields = {f.name: getattr(self.light, f.name) for f in dataclasses.fields(self.light)}
        return {SINGLE_LIGHT: light_config_class(type(self.light))(**fields)}


@dataclass(frozen=True)
class DistillConfig:
    """How the light net learns from its teacher (the co-trained booster, a finished run's
    booster, or codistillation peers).

    total = w(λ) · BCE(y, light) + BCE(y, booster) + s(step) · Σ_m weight_m · loss_m

    over the methods m of `methods`, with s(step) the warm-up/ramp share, λ(step) =
    s(step) · Σ_m weight_m, and w(λ) = 1 for hint_form "additive" (Rocket Launching) and
    1 − λ for "convex" (Privileged Features Distillation, Xu et al. KDD 2020).
    """

    mode: str = "co_train"  # co_train | light_only | booster_only
    # {method name: its knobs}, each with its own `weight`; several combine. Methods: kd,
    # logit_mse, hidden, pairwise, topk (README "Distillation methods"). KD of weight 1 by
    # default: on Frappe it beat the logit-MSE hint at every weight tried, and on the
    # Criteo/Avazu samples the two are within noise (README "Quality").
    methods: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"kd": {"weight": 1.0, "temperature": 1.0}}
    )
    gradient_block: bool = True
    warmup_steps: int = 0  # every method's weight is 0 for this many steps
    ramp: str = "linear"  # after warm-up: "linear" over ramp_steps, or "step" straight to λ
    ramp_steps: int = 0
    hint_form: str = "additive"  # "additive" or "convex": light BCE weighted by 1 − λ (PFD)
    # Codistillation (training/codistill.py): replicas on different data shards take their
    # peers' checkpointed light logits as the hint target. 1 = off.
    codistill_replicas: int = 1
    codistill_every_steps: int = 100  # save own checkpoint and reload peers this often
    # Two-stage KD (distill/teacher.py): the model dir of a finished run whose booster,
    # frozen, is the hint target of this light_only run, or a list of them (the mean of
    # their logits teaches). None = off.
    teacher_dir: tuple[str, ...] | None = None
    # co_train: once the booster's own validation metric (of train.selection_metric's
    # kind) has not improved for this many epochs, it stops training and teaches from a
    # frozen copy of its best epoch (its tower and the table rows it read); the light nets
    # train on. 0 = off: the booster trains as long as they do. Inert in the other modes.
    teacher_patience: int = 0


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 1024
    num_epochs: int = 1
    steps_per_epoch: int | None = None  # None: one pass over the training files
    # Embedding tables get a sparse-friendly optimizer (touches only the rows in the batch);
    # dense layers get Adam.
    embedding_optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(name="adagrad", learning_rate=0.05)
    )
    dense_optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(name="adam", learning_rate=0.001)
    )
    # The light tower's own dense layers, if set (else dense_optimizer): a small served net
    # often wants a larger learning rate than the deep booster.
    light_optimizer: OptimizerConfig | None = None
    jit_compile: bool = False
    # The towers' compute: bfloat16 (mixed_bfloat16: variables, embeddings and losses stay
    # float32), float32, or auto: bfloat16 where the machine computes it natively (a CPU with
    # AVX512-BF16 or AMX, an Ampere or later GPU), float32 elsewhere, where bf16 is emulated
    # and slower. Served light nets compute in float32 either way. true/false (files of
    # earlier runs) read as bfloat16/float32.
    mixed_precision: str = "auto"
    seed: int = 0
    shuffle_buffer_rows: int = 65536
    bad_rows: str = "error"  # error | skip
    checkpoint_every_steps: int = 1000  # mid-epoch backups (rocketctr/training/resume.py); 0 = none
    # Epoch-end checkpoints kept in checkpoints/ (the oldest is deleted beyond this). Each
    # holds every variable and optimizer slot: with Adagrad tables, twice the tables' bytes.
    keep_checkpoints: int = 3
    strategy: str = "auto"  # auto | default | mirrored | multi_worker | parameter_server
    # parameter_server: how many shards each table of 256 KiB or more is split into, placed
    # round-robin over the ps tasks (more shards than tasks evens out their memory); 0 = one
    # per ps task. Checkpoints hold tables whole, so a run resumes with any value.
    table_shards: int = 0
    # Model selection on what ships: the weights of the epoch with the best validation
    # `selection_metric` (a light-net metric by default) are kept, checkpointed and exported.
    # light_auc | light_bce | light_distill (the light net's validation distillation loss,
    # with a teacher) | booster_auc | booster_bce
    selection_metric: str = "light_auc"
    restore_best: bool = True
    early_stopping_patience: int = 0  # epochs without improvement before stopping; 0 = never
    # Multiply every optimizer's learning rate by this factor after `lr_plateau_patience`
    # epochs without improvement of `selection_metric`; 1.0 = off.
    lr_plateau_factor: float = 1.0
    lr_plateau_patience: int = 1


# How the exported light table stores its rows (see rocketctr/serving/light_table.py).
EMBEDDING_DTYPES = ("float32", "bfloat16", "int8")


@dataclass(frozen=True)
class ExportConfig:
    """The light SavedModel; nothing here changes training or what a checkpoint means."""

    # Which of `model.lights` a run exports (`rocketctr export --light` chooses another);
    # it also leads training: the shared optimizers decay on its plateaus, and the run's
    # checkpoint holds its best epoch. null: the best within latency_budget_ms, if set,
    # else the first one.
    light: str | None = None
    # With several light nets and no export.light: export the one of highest validation
    # AUC whose serving latency (the SavedModel's graph, in-process, at latency_batch rows
    # a request) is within this many milliseconds (`rocketctr frontier` shows them all).
    latency_budget_ms: float | None = None
    latency_batch: int = 100

    # float32 | bfloat16 | int8 (one float32 scale per row); dequantized at lookup in the
    # serving graph. The exporter refuses an export whose AUC moves beyond the dtype's
    # stated tolerance (rocketctr.serving.quality.AUC_TOLERANCE).
    embedding_dtype: str = "float32"
    # The export gate (rocketctr/serving/gate.py), scored on the export's eval rows: refuse a
    # light net whose AUC is below this floor (null: no floor; a net at or below chance,
    # AUC <= 0.51, is always refused) ...
    min_auc: float | None = None
    # ... or whose AUC is lower by more than this than the newest version already under the
    # export base, scored on the same rows (null: no comparison).
    max_auc_drop: float | None = 0.01


@dataclass(frozen=True)
class Config:
    schema: str = "criteo"  # a name in data_schemas/ or a path to a schema YAML
    model: ModelConfig = field(default_factory=ModelConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    def __post_init__(self) -> None:
        from rocketctr.distill.schedule import validate_schedule  # methods import this module

        validate_schedule(self.distill)  # the methods and their knobs
        names = list(self.model.light_nets())
        if self.export.light is not None and self.export.light not in names:
            raise ConfigError(
                f"Config key export.light names {self.export.light!r}; the light nets are {names}."
            )
        if len(names) > 1:
            if self.distill.codistill_replicas > 1:
                raise ConfigError(
                    f"Codistillation trains one light net; model.lights names {len(names)}."
                )
            if self.train.selection_metric.startswith("booster"):
                raise ConfigError(
                    "With several light nets, each is selected on its own metric: "
                    "train.selection_metric must be light_auc, light_bce or light_distill."
                )

        d = self.distill
        # Inert without a co-trained booster (light_only, booster_only): a preset's
        # baselines differ from it by distill.mode alone.
        if d.teacher_patience and d.mode == "co_train":
            why = None
            if d.codistill_replicas > 1:
                why = "stops the co-trained booster, and codistillation peers teach here"
            elif not self.train.restore_best or self.train.selection_metric.startswith("booster"):
                why = "keeps the booster's best epoch as the teacher: it needs "
                why += "train.restore_best and a light-net train.selection_metric"
            if why:
                raise ConfigError(
                    f"Config key distill.teacher_patience ({d.teacher_patience}) {why}."
                )

    @property
    def export_light(self) -> str:
        """The name of the light net a run exports by default."""
        return self.export.light or next(iter(self.model.light_nets()))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        return _from_dict(cls, data, path="")

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    def replace(self, overrides: dict[str, Any]) -> Config:
        """Returns a copy with dotted-key overrides applied, e.g. {"train.batch_size": 64}."""
        data = self.to_dict()
        for key, value in overrides.items():
            node = data
            parts = key.split(".")
            if parts[0] == "distill" and len(parts) == 2 and parts[1] in _LEGACY_DISTILL:
                raise ConfigError(f"Config key {key!r}: {_LEGACY_DISTILL[parts[1]]}")
            if parts[:2] == ["distill", "methods"] and len(parts) in (3, 4):
                # A method's knobs are checked by the method (rocketctr/distill): naming one
                # adds it to the methods (all its knobs, or one), or changes its knob.
                methods = data["distill"]["methods"]
                if len(parts) == 3:
                    methods[parts[2]] = value
                else:
                    methods.setdefault(parts[2], {})[parts[3]] = value
                continue
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    if part == "schema":
                        raise ConfigError(
                            f"Unknown config key {key!r}: 'schema' names a schema file, it is "
                            "not a section. To read another layout, copy a schema from "
                            "data_schemas/, edit it, and pass --set schema=<its path>."
                        )
                    raise ConfigError(f"Unknown config key {key!r}: {part!r} is not a section.")
                node = node[part]
            tower_section = parts[:2] in (["model", "booster"], ["model", "light"]) or (
                parts[:2] in (["model", "lights"], ["model", "boosters"]) and len(parts) == 4
            )
            # A tower's knob that its current tower lacks: the tower may be renamed too, and
            # the section is checked as a whole when the config loads.
            if parts[-1] not in node and not (tower_section and parts[-1] in _tower_knobs()):
                raise ConfigError(f"Unknown config key {key!r}. Known keys here: {sorted(node)}")
            node[parts[-1]] = value
        return Config.from_dict(data)


def _default_field(cls: type, name: str) -> Any:
    (f,) = [f for f in dataclasses.fields(cls) if f.name == name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def positive(v) -> bool:
    return v >= 1


def non_negative(v) -> bool:
    return v >= 0


def positive_finite(v) -> bool:
    return math.isfinite(v) and v > 0


def non_negative_finite(v) -> bool:
    return math.isfinite(v) and v >= 0


def all_positive(v) -> bool:
    return all(u >= 1 for u in v)


def optional_positive(v) -> bool:
    return v is None or v >= 1


def optional_positive_finite(v) -> bool:
    return v is None or positive_finite(v)


# What each numeric field must hold, checked when a config loads, so that a value no model can
# use is refused naming its key before anything is built or written. A tower's `Config`
# declares the checks of its own knobs: {field: (predicate, message)} as `CHECKS`.
_VALUE_CHECKS: dict[tuple[type, str], tuple[Callable[[Any], bool], str]] = {
    (ModelConfig, "embedding_dim"): (positive, "must be >= 1"),
    (ModelConfig, "light_embedding_gradient_scale"): (
        lambda v: 0.0 <= v <= 1.0,
        "must be in [0, 1]",
    ),
    (ModelConfig, "embedding_l2"): (non_negative_finite, "must be finite and >= 0"),
    (ModelConfig, "embedding_table_l2"): (non_negative_finite, "must be finite and >= 0"),
    (ModelConfig, "embedding_init_stddev"): (positive_finite, "must be finite and > 0"),
    (DistillConfig, "warmup_steps"): (non_negative, "must be >= 0"),
    (DistillConfig, "ramp_steps"): (non_negative, "must be >= 0"),
    (DistillConfig, "codistill_replicas"): (positive, "must be >= 1"),
    (DistillConfig, "codistill_every_steps"): (positive, "must be >= 1"),
    (DistillConfig, "teacher_patience"): (non_negative, "must be >= 0 (0: off)"),
    (ModelConfig, "booster_mixture"): (
        lambda v: v in BOOSTER_MIXTURES,
        f"must be one of {list(BOOSTER_MIXTURES)}",
    ),
    (DistillConfig, "teacher_dir"): (lambda v: v is None or len(v) > 0, "must name a run dir"),
    (DistillConfig, "mode"): (lambda v: v in MODES, f"must be one of {list(MODES)}"),
    (DistillConfig, "ramp"): (lambda v: v in RAMPS, f"must be one of {list(RAMPS)}"),
    (TrainConfig, "selection_metric"): (
        lambda v: v in SELECTION_METRICS,
        f"must be one of {list(SELECTION_METRICS)}",
    ),
    (TrainConfig, "strategy"): (lambda v: v in STRATEGIES, f"must be one of {list(STRATEGIES)}"),
    (TrainConfig, "mixed_precision"): (
        lambda v: v in PRECISIONS,
        f"must be one of {list(PRECISIONS)}",
    ),
    (OptimizerConfig, "name"): (lambda v: v in OPTIMIZERS, f"must be one of {list(OPTIMIZERS)}"),
    (OptimizerConfig, "learning_rate"): (positive_finite, "must be finite and > 0"),
    (LightConfig, "embedding_gradient_scale"): (
        lambda v: v is None or 0.0 <= v <= 1.0,
        "must be null or in [0, 1]",
    ),
    (OptimizerConfig, "warmup_steps"): (non_negative, "must be >= 0 (0: no warm-up)"),
    (OptimizerConfig, "clipnorm"): (optional_positive_finite, "must be null or finite and > 0"),
    (OptimizerConfig, "global_clipnorm"): (
        optional_positive_finite,
        "must be null or finite and > 0",
    ),
    (TrainConfig, "batch_size"): (positive, "must be >= 1"),
    (TrainConfig, "num_epochs"): (positive, "must be >= 1"),
    (TrainConfig, "steps_per_epoch"): (optional_positive, "must be null (one pass) or >= 1"),
    (TrainConfig, "seed"): (non_negative, "must be >= 0"),
    (TrainConfig, "shuffle_buffer_rows"): (positive, "must be >= 1"),
    (TrainConfig, "checkpoint_every_steps"): (non_negative, "must be >= 0 (0: no backups)"),
    (TrainConfig, "keep_checkpoints"): (positive, "must be >= 1"),
    (TrainConfig, "table_shards"): (non_negative, "must be >= 0 (0: one per ps task)"),
    (TrainConfig, "early_stopping_patience"): (non_negative, "must be >= 0 (0: never stop)"),
    (TrainConfig, "lr_plateau_factor"): (lambda v: 0.0 < v <= 1.0, "must be in (0, 1]"),
    (TrainConfig, "lr_plateau_patience"): (positive, "must be >= 1"),
    (ExportConfig, "min_auc"): (
        lambda v: v is None or 0.0 <= v <= 1.0,
        "must be null or in [0, 1]",
    ),
    (ExportConfig, "max_auc_drop"): (
        lambda v: v is None or 0.0 <= v <= 1.0,
        "must be null or in [0, 1]",
    ),
    (ExportConfig, "latency_budget_ms"): (
        lambda v: v is None or positive_finite(v),
        "must be null or finite and > 0",
    ),
    (ExportConfig, "latency_batch"): (positive, "must be >= 1"),
    (ExportConfig, "embedding_dtype"): (
        lambda v: v in EMBEDDING_DTYPES,
        f"must be one of {list(EMBEDDING_DTYPES)}",
    ),
}


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


# What replaced the distill keys of configs written before `distill.methods`; such files
# still load (`_legacy_distill`).
_LEGACY_DISTILL = {
    "hint": "replaced by distill.methods: {<name>: {weight: ...}}, e.g. "
    "--set distill.methods.logit_mse.weight=1 (with distill.methods.kd.weight=0).",
    "hint_weight": "replaced by each method's weight, e.g. --set distill.methods.kd.weight=0.3.",
    "temperature": "replaced by distill.methods.kd.temperature.",
    "pairwise": "replaced by distill.methods.pairwise, e.g. "
    "--set distill.methods.pairwise.weight=0.1.",
}


def _legacy_distill(data: dict[str, Any], path: str) -> dict[str, Any]:
    """A distill section with the old keys (`hint`, `hint_weight`, `temperature`,
    `pairwise`) rewritten as `methods`; any other section as it is."""
    old = [k for k in _LEGACY_DISTILL if k in data]
    if not old:
        return data
    if "methods" in data:
        raise ConfigError(
            f"Config section {path} sets both methods and {old}: "
            + " ".join(f"{k}: {_LEGACY_DISTILL[k]}" for k in old)
        )
    data = dict(data)
    name = data.pop("hint", "kd")
    knobs = {"weight": data.pop("hint_weight", 1.0)}
    if "temperature" in data:
        temperature = data.pop("temperature")
        if name != "kd":
            raise ConfigError(
                f"Config key {path}.temperature is read by the kd hint only; hint is {name!r}."
            )
        knobs["temperature"] = temperature
    methods = {name: knobs}
    pairwise = data.pop("pairwise", None) or {}
    if not isinstance(pairwise, dict):
        raise ConfigError(
            f"Config section {path}.pairwise must be a mapping. Received: {pairwise!r}"
        )
    # Off at weight 0; its other knob kept its default in the files runs recorded.
    defaults = {"weight": 0.0, "temperature": 1.0}
    changed = sorted(k for k, v in pairwise.items() if k != "weight" and v != defaults.get(k))
    if pairwise.get("weight", 0):
        methods["pairwise"] = pairwise
    elif changed:
        raise ConfigError(
            f"Config key {path}.pairwise.{changed[0]} is set but {path}.pairwise.weight is "
            "0: pairwise distillation is off. Set its weight, or remove the key."
        )
    data["methods"] = methods
    return data


def value_check(cls: type, name: str) -> tuple[Callable[[Any], bool], str] | None:
    """The check of field `name` of config class `cls` (its own or a base class's)."""
    for k in cls.__mro__:
        if name in k.__dict__.get("CHECKS", {}):
            return k.CHECKS[name]
        if (k, name) in _VALUE_CHECKS:
            return _VALUE_CHECKS[k, name]
    return None


# The knobs every tower config had before each tower owned its `Config`, at their defaults:
# the config files runs recorded list them all, so a knob a tower does not read loads (and is
# dropped) while it holds this value.
_EARLIER_TOWER_DEFAULTS = {
    "hidden_units": [],
    "num_cross_layers": 3,
    "projection_dim": None,
    "cross_structure": "parallel",
    "cross_type": "matrix",
    "cin_layer_sizes": [128, 128],
    "attention_units": [80, 40],
    "dropout": 0.0,
    "batch_norm": False,
    "output_dim": 16,
}


def tower_config_class(name: str) -> type[TowerConfig]:
    """The `Config` of the tower registered as `name`."""
    from rocketctr.towers.base import tower_class  # the registry; towers import this module

    return tower_class(name).Config


def light_config_class(config_class: type[TowerConfig]) -> type[LightConfig]:
    """A tower's `Config` with the knobs of a light net added (`LightConfig`)."""
    if issubclass(config_class, LightConfig):
        return config_class
    if config_class is TowerConfig:  # a tower with no knobs (lr, fm)
        return LightConfig
    if config_class not in _LIGHT_CLASSES:
        cls = type(f"Light{config_class.__name__}", (config_class, LightConfig), {})
        _LIGHT_CLASSES[config_class] = dataclass(frozen=True)(cls)
    return _LIGHT_CLASSES[config_class]


_LIGHT_CLASSES: dict[type, type] = {}


def _tower_knobs() -> set[str]:
    """Every knob of every registered tower."""
    from rocketctr.towers.base import tower_class, tower_names

    return {f.name for n in tower_names() for f in dataclasses.fields(tower_class(n).Config)}


def tower_config(data: Any, path: str = "", light: bool = False) -> TowerConfig:
    """A tower section ({name: <tower>, <its knobs>...}) loaded as its tower's `Config` (with
    a light net's knobs when `light`), refusing knobs the tower does not read."""
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ConfigError(
            f"Config section {path or '<tower>'} must be a mapping with a tower name. "
            f"Received: {data!r}"
        )
    cls = tower_config_class(data["name"])
    if light:
        cls = light_config_class(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    earlier = {
        k
        for k, v in data.items()
        if k not in known
        and k in _EARLIER_TOWER_DEFAULTS
        and _to_plain(v) == _EARLIER_TOWER_DEFAULTS[k]
    }
    ignored = sorted(k for k in data if k not in known and k not in earlier)
    if ignored:
        knobs = sorted(known - {"name"} - {f.name for f in dataclasses.fields(LightConfig)})
        raise ConfigError(
            f"Config section {path or '<tower>'}: tower {data['name']!r} does not use "
            f"{ignored}; it uses {knobs}."
        )
    return _from_dict(cls, {k: v for k, v in data.items() if k not in earlier}, path)


def section_from_dict(cls: type, data: Any, path: str) -> Any:
    """A config dataclass `cls` from a mapping, refusing unknown keys and wrong types with a
    message naming `path` (how a distillation method reads its knobs)."""
    return _from_dict(cls, data, path)


def _from_dict(cls: type, data: Any, path: str) -> Any:
    where = path or "<top level>"
    if not isinstance(data, dict):
        raise ConfigError(f"Config section {where} must be a mapping. Received: {data!r}")
    if cls is DistillConfig:
        data = _legacy_distill(data, path)
        if isinstance(data.get("teacher_dir"), str):  # one run dir: a list of one
            data = {**data, "teacher_dir": [data["teacher_dir"]]}
    if cls is TrainConfig and isinstance(data.get("mixed_precision"), bool):  # earlier files
        data = {**data, "mixed_precision": "bfloat16" if data["mixed_precision"] else "float32"}
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"Unknown config key(s) {unknown} in section {where}. Known keys: {sorted(known)}"
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{path}.{name}" if path else name
        kwargs[name] = _coerce(hints[name], value, key)
        check = value_check(cls, name)
        if check and not check[0](kwargs[name]):
            raise ConfigError(f"Config key {key} {check[1]}. Received: {value!r}")
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"Config section {where}: {e}") from None


_FLOAT = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, path)
    if tp in (TowerConfig, LightConfig):
        return tower_config(value, path, light=tp is LightConfig)
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, path)
    if origin is dict and dataclasses.is_dataclass(args[1]):  # {name: section}
        if not isinstance(value, dict):
            raise ConfigError(f"Config key {path} must map names to sections. Received: {value!r}")
        return {str(k): _coerce(args[1], v, f"{path}.{k}") for k, v in value.items()}
    if origin is dict:  # {name: mapping}, checked by whoever reads it
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, dict) for k, v in value.items()
        ):
            raise ConfigError(f"Config key {path} must map names to mappings. Received: {value!r}")
        return {k: dict(v) for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"Config key {path} must be a list. Received: {value!r}")
        return tuple(_coerce(args[0], v, path) for v in value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and re.fullmatch(_FLOAT, value.strip()):
        return float(value)  # YAML 1.1 reads 1e10 or 1e-3 (no dot) as a string
    if tp in (int, float, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise ConfigError(
                f"Config key {path} must be {tp.__name__}. Received: {value!r} "
                f"({type(value).__name__})"
            )
        return value
    raise ConfigError(f"Config key {path} has an unsupported type {tp}")  # pragma: no cover


def preset_names() -> list[str]:
    return sorted(
        p.name[: -len(".yaml")]
        for p in resources.files("rocketctr.config.presets").iterdir()
        if p.name.endswith(".yaml")
    )


def load_config(name_or_path: str) -> Config:
    """Loads a preset by name (see `preset_names()`) or a YAML file by path."""
    data, source = config_data(name_or_path)
    try:
        return Config.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def config_data(name_or_path: str) -> tuple[dict[str, Any], str]:
    """The mapping a preset or YAML file holds, unchecked, and where it came from. Loading it
    as a `Config` builds its towers' and methods' configs, which imports TensorFlow."""
    path = Path(name_or_path)
    resource = resources.files("rocketctr.config.presets") / f"{name_or_path}.yaml"
    # A preset's name wins over a directory of that name (say a run dir: --model_dir frappe).
    named = "/" not in name_or_path and resource.is_file() and not path.is_file()
    if not named and (path.suffix in (".yaml", ".yml") or path.exists()):
        if not path.exists():
            raise ConfigError(f"Config file not found: {path}")
        data = yaml_files.load(path, ConfigError)
        source = str(path)
    else:
        if not resource.is_file():
            raise ConfigError(
                f"Unknown config preset {name_or_path!r}. Presets: {preset_names()}; "
                "or pass a path to a YAML file."
            )
        source = f"preset {name_or_path}"
        data = yaml_files.parse(resource.read_text(), source, ConfigError)
    return data or {}, source


def parse_override(text: str) -> tuple[str, Any]:
    """Parses one `--set key=value`; the value is read as YAML (numbers, lists, true/false)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value. Received: {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)


def save_config(config: Config, path: Path) -> None:
    """Writes `config` as YAML, atomically: a process killed mid-write leaves the old file."""
    write_atomically(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
