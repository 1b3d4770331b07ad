"""The co-training model: shared embeddings, a booster tower, a light tower, one train_step.

    total = BCE(y, light) + BCE(y, booster) + s(step) · Σ_m weight_m · method_m(teacher, light)

(composed by the `Distiller`, distill/distiller.py; the teacher is the booster by default.)

`light_only` and `booster_only` run through the same code with the other tower absent, so
baselines are trained exactly like the co-trained nets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re

import tensorflow as tf
import tf_keras

from rocketctr import towers
from rocketctr.config.core import Config, ConfigError, LightConfig
from rocketctr.distill.base import MethodContext
from rocketctr.distill.distiller import Distiller, DistillerInputs
from rocketctr.distill.teacher import BoosterTeacher, Teacher
from rocketctr.features.processor import FeatureProcessor
from rocketctr.features.schema import Schema
from rocketctr.layers.embedding import Embedding
from rocketctr.model.ensemble import BoosterEnsemble, member_scope
from rocketctr.model.optimizers import build_optimizer
from rocketctr.model.precision import float32_compute, tower_precision
from rocketctr.towers.base import Lookup, VectorSignature

# "distiller": the distillation methods' own weights (a regressor), trained, never served.
ROLES = ("shared_embedding", "light_embedding", "booster", "light", "distiller")
# The scopes of the light nets of `model.lights` (`light_<name>`), of their distillers
# (`distiller_<name>`) and of the boosters of `model.boosters` and their gate
# (`booster_<name>`); the light net of `model.light` is `light`, its distiller `distiller`.
_NAMED_SCOPE = re.compile(r"(light|distiller|booster)_[a-z][a-z0-9_]*")
_NOT_A_LIGHT_NET = ("light_embedding", "light_features", "light_table")


def variable_role(name: str) -> str:
    """The role of a variable by its name: one of ROLES, or "other" (e.g. optimizer state)."""
    for part in name.split("/"):
        if part in ROLES:
            return part
        if part not in _NOT_A_LIGHT_NET and _NAMED_SCOPE.fullmatch(part):
            return part.split("_")[0]
    return "other"


class LogitSpread(tf_keras.metrics.Metric):
    """The standard deviation of a tower's logits over the rows seen (float64 sums, so it
    aggregates over replicas and a constant output reads ~0): the validation `*_logit_std`
    by which training health tells a dead light net (rocketctr.training.health)."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, dtype=tf.float64)
        self.count = self.add_weight("count", initializer="zeros", dtype=tf.float64)
        self.sum = self.add_weight("sum", initializer="zeros", dtype=tf.float64)
        self.sum_squares = self.add_weight("sum_squares", initializer="zeros", dtype=tf.float64)

    def update_state(self, logits: tf.Tensor) -> None:
        x = tf.cast(tf.reshape(logits, [-1]), tf.float64)
        self.count.assign_add(tf.cast(tf.size(x), tf.float64))
        self.sum.assign_add(tf.reduce_sum(x))
        self.sum_squares.assign_add(tf.reduce_sum(x * x))

    def result(self) -> tf.Tensor:
        n = tf.maximum(self.count, 1.0)
        mean = self.sum / n
        return tf.sqrt(tf.maximum(self.sum_squares / n - mean * mean, 0.0))


@dataclasses.dataclass(eq=False)
class LightNet:
    """One light net of the model and what trains it.

    Attributes:
        name: its name in `model.lights` ("light" for a config's `model.light`): its
            metrics are `<name>_auc`, `<name>_bce`, `<name>_logit_std`.
        tower: the tower, in scope `light` (one light net) or `light_<name>`.
        distiller: composes its loss and its teacher's hint.
        optimizer: its own optimizer for the tower's dense weights, or None (the model's
            dense optimizer).
        gradient_scale: how much of its gradient reaches the shared tables (with a booster).
        spread: its validation logits' spread (a dead net's are constant); not tracked.
        loss_prefix: prefixes its distillation losses' names ("" for one light net).
    """

    name: str
    tower: towers.Tower
    distiller: Distiller
    optimizer: tf_keras.optimizers.Optimizer | None
    gradient_scale: float
    spread: LogitSpread
    loss_prefix: str

    @property
    def loss_names(self) -> tuple[str, ...]:
        """Its distillation losses' names in the logs."""
        return tuple(self.loss_prefix + n for n in self.distiller.loss_names)


def scale_gradient(x: tf.Tensor, scale: float) -> tf.Tensor:
    """x in the forward pass; scale × the incoming gradient in the backward pass.

    0 is a plain stop_gradient (no zero-valued updates reach the variables: a stateful
    optimizer such as Adam would still move its moments on a zero gradient); 1 is x itself.
    """
    if scale == 1.0:
        return x
    if scale == 0.0:
        return tf.stop_gradient(x)
    frozen = tf.stop_gradient(x)
    return frozen + scale * (x - frozen)  # x - frozen is exactly 0 in the forward pass


class CoTrainModel(tf_keras.Model):
    """Booster and light towers on shared embedding tables.

    Variables are named by role: `shared_embedding/...` (both towers), `booster/...` (never
    served; an ensemble's boosters `booster_<name>/...`, `model/ensemble.py`), `light/...`,
    with separate light embeddings `light_embedding/...`, and `distiller/...` (methods'
    weights, never served).

    Args:
        config: the resolved config.
        schema: the dataset schema; privileged features reach the booster only.
        teacher: what the light net learns from (distill/teacher.py): a finished run's
            booster or codistillation peers; by default the co-trained booster, if any.
        restored: every weight is read from a checkpoint next (`build_model(train=False)`):
            the embedding tables get no initial value (`Embedding`, init_stddev None).
    """

    def __init__(
        self,
        config: Config,
        schema: Schema,
        teacher: Teacher | None = None,
        restored: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        d = config.distill
        self.rocket_config = config
        self.schema = schema
        self.has_booster = d.mode != "light_only"
        self.has_light = d.mode != "booster_only"

        self.processor = FeatureProcessor(schema, name="features")
        light_features = [f for f in schema.feature_names if f not in schema.privileged]
        self.light_processor = FeatureProcessor(schema, light_features, name="light_features")
        # Positions of the light net's inputs among all processed fields/dense columns.
        slots = list(self.processor.slot_keys)
        all_dense = [f.name for f in self.processor.dense]
        self._light_cat_idx = [slots.index(slot) for slot in self.light_processor.slot_keys]
        self._light_dense_idx = [all_dense.index(f.name) for f in self.light_processor.dense]

        dim = config.model.embedding_dim
        rows = self.processor.num_table_rows
        stddev = None if restored else config.model.embedding_init_stddev
        padded = bool(schema.multi_valued_columns)  # empty slots of multi-valued fields
        self.embedding = Embedding(rows, dim, stddev, padded, name="shared_embedding")
        self.light_embedding = None
        if config.model.separate_light_embeddings and self.has_light:
            self.light_embedding = Embedding(rows, dim, stddev, padded, name="light_embedding")
        self.booster = self._build_booster() if self.has_booster else None
        self._xla_calls = {}  # tower name -> XLA-compiled call, with train.jit_compile
        if teacher is None and self.has_booster and self.has_light:
            teacher = BoosterTeacher(self.booster.hidden_names)
        # A plain object: nothing of a frozen teacher is tracked (checkpointed, exported).
        self.teacher = teacher if self.has_light else None
        self.dense_optimizer = build_optimizer(config.train.dense_optimizer)
        self.embedding_optimizer = build_optimizer(config.train.embedding_optimizer)
        nets = config.model.light_nets() if self.has_light else {}
        # Not tracked as a dict: each net's parts are tracked under their own attributes.
        self.__dict__["light_nets"] = {
            name: self._build_light_net(name, light, single=not config.model.lights)
            for name, light in nets.items()
        }
        # Without a light net (booster_only), one distiller composes the booster's loss.
        self.__dict__["_distillers"] = [n.distiller for n in self.light_nets.values()] or [
            self._distiller("distiller", ())
        ]
        if not self.has_light:
            self.distiller = self._distillers[0]
            self.light = self.light_optimizer = None
        self._trackers = {
            name: tf_keras.metrics.Mean(name=name)
            for name in (
                "loss",
                *(f"{n}_bce" for n in self.light_nets),
                "booster_bce",
                *(f"{n}_bce" for n in self.booster_members),
                *(m for n in self.light_nets.values() for m in n.loss_names),
                "hint_weight",
            )
        }
        self._aucs = {
            tower: tf_keras.metrics.AUC(num_thresholds=2000, name=f"{tower}_auc")
            for tower in (*self.light_nets, "booster", *self.booster_members)
        }
        self.__dict__["lead"] = None
        # The booster of its best epoch, frozen, once it stopped (`freeze_booster`). Not
        # tracked: the run keeps it in best/booster/.
        self.__dict__["frozen_booster"] = None
        if self.has_light:
            self.select_light(config.export_light)

    def _build_booster(self) -> towers.Tower | BoosterEnsemble:
        """The booster tower (scope `booster`), or the ensemble of `model.boosters`."""
        config = self.rocket_config
        inputs = towers.TowerInputs.of(self.processor, self.schema)
        with tower_precision(config.train.mixed_precision):
            if not config.model.boosters:
                return towers.build_tower(config.model.booster, "booster", inputs)
            # float32 itself: it mixes the boosters' float32 logits.
            return BoosterEnsemble(
                config.model.boosters,
                inputs,
                config.model.booster_mixture,
                name="booster",
                dtype="float32",
            )

    @property
    def booster_members(self) -> dict[str, towers.Tower]:
        """{"booster_<name>": tower} of each booster of an ensemble (`model.boosters`); {}
        for one booster."""
        if not isinstance(self.booster, BoosterEnsemble):
            return {}
        return {member_scope(n): t for n, t in self.booster.members.items()}

    def _booster_towers(self) -> list[towers.Tower]:
        """The towers that learn from the labels as boosters: the booster, or each of an
        ensemble."""
        if not self.has_booster:
            return []
        return list(self.booster_members.values()) or [self.booster]

    def _distiller(self, name: str, light_hidden: tuple[str, ...]) -> Distiller:
        return Distiller(
            self.rocket_config.distill,
            MethodContext(
                light_hidden=light_hidden,
                teacher_hidden=self.teacher.hidden_names if self.teacher else (),
                group_column=self.schema.group_column,
            ),
            name=name,
        )

    def _build_light_net(self, name: str, light: LightConfig, single: bool) -> LightNet:
        """Builds a light net's tower, distiller and optimizer, each tracked under its own
        attribute: `light`, `distiller`, `light_optimizer` for a config's one `model.light`
        (the names of runs before `model.lights`), `<part>_<name>` for `model.lights`."""
        config = self.rocket_config
        suffix = "" if single else f"_{name}"
        with tower_precision(config.train.mixed_precision):
            tower = towers.build_tower(
                light, f"light{suffix}", towers.TowerInputs.of(self.light_processor, self.schema)
            )
        optimizer_config = light.optimizer or config.train.light_optimizer
        net = LightNet(
            name=name,
            tower=tower,
            distiller=self._distiller(f"distiller{suffix}", tuple(tower.hidden_names)),
            optimizer=build_optimizer(optimizer_config) if optimizer_config else None,
            gradient_scale=(
                config.model.light_embedding_gradient_scale
                if light.embedding_gradient_scale is None
                else light.embedding_gradient_scale
            ),
            # A dead light net's logits are constant: model selection watches their
            # validation std. Not tracked: checkpoints and best/ weights (a list of
            # `weights`) of earlier runs hold no such variables.
            spread=LogitSpread(f"{name}_logit_std"),
            loss_prefix="" if single else f"{name}_",
        )
        setattr(self, f"light{suffix}", tower)
        setattr(self, f"distiller{suffix}", net.distiller)
        if single or net.optimizer is not None:
            setattr(self, f"light_optimizer{suffix}", net.optimizer)
        return net

    def select_light(self, name: str) -> LightNet:
        """Makes light net `name` the one `light`, `light_logits`, `light_table` and the
        exporter speak of (a run's `export.light`, or its first light net, by default)."""
        if name not in self.light_nets:
            raise ConfigError(
                f"No light net {name!r} in this run; its light nets: {list(self.light_nets)}."
            )
        net = self.light_nets[name]
        self.__dict__["lead"] = net
        if self.rocket_config.model.lights:  # else these are the tracked attributes themselves
            self.__dict__["light"] = net.tower
            self.__dict__["distiller"] = net.distiller
            self.__dict__["light_optimizer"] = net.optimizer
        return net

    # ----------------------------------------------------------------------------- forward
    def call(
        self, features: dict[str, tf.Tensor], training: bool | None = None, as_towers: bool = False
    ) -> dict:
        """{"booster_logits": [B], "<light net>_logits": [B]} for the towers present
        (`light_logits` for one light net); with `as_towers`, {"booster": TowerOutput,
        "<light net>": TowerOutput} (float32) instead."""
        ids, dense = self.processor(features)
        out = {}
        if training:
            self._add_embedding_l2(ids)
        if self.has_booster:
            out.update(self.booster_outputs(ids, dense, training))
        if self.has_light:
            if len(self._light_dense_idx) < dense.shape[1]:
                dense = tf.gather(dense, self._light_dense_idx, axis=1)
            light_ids = self._light_ids(ids)
            for net in self.light_nets.values():
                out[net.name] = self._light_from_ids(
                    light_ids, dense, training, self._xla(net.tower), net
                )
        return out if as_towers else {f"{t}_logits": output.logits for t, output in out.items()}

    def booster_outputs(self, ids, dense, training) -> dict[str, towers.TowerOutput]:
        """{"booster": what the booster (or an ensemble's mixture) outputs} and, for an
        ensemble, each booster's as "booster_<name>". A stopped booster's are its frozen
        copy's (`freeze_booster`), in inference mode."""
        source = self.frozen_booster or self
        live = source is self

        def output(tower, table=source.embedding):
            call = self._xla(tower) if live else None
            return self.tower_output(
                tower, table, self.processor, ids, dense, training and live, call
            )

        booster = source.booster
        if not isinstance(booster, BoosterEnsemble):
            return {"booster": output(booster)}
        rows = source.embedding(ids)  # read once for every booster and the gate

        def table(_):
            return rows

        out = {member_scope(n): output(tower, table) for n, tower in booster.members.items()}
        embeddings = self.processor.pool(rows, ids) if booster.gate is not None else None
        members = {n: out[member_scope(n)] for n in booster.members}
        out["booster"] = booster(members, embeddings, dense)
        return out

    def tower_outputs(
        self, features: dict[str, tf.Tensor], training: bool | None = None
    ) -> dict[str, towers.TowerOutput]:
        """{"booster": TowerOutput, "<light net>": TowerOutput} for the towers present,
        float32."""
        return self(features, training=training, as_towers=True)

    @property
    def booster_trains(self) -> bool:
        """The model has a booster, and it has not stopped (`freeze_booster`)."""
        return self.has_booster and self.frozen_booster is None

    def freeze_booster(self, path: str) -> None:
        """Stops the booster: from the next traced step on, its output (what it teaches,
        its validation metrics) is that of the weights `booster_checkpoint` saved at
        `path`, frozen in a copy of its own, and none of its variables trains. Its tower is
        set to those weights too, so the run's checkpoints hold them."""
        alone = self.rocket_config.replace({"distill.mode": "booster_only"})
        with self.distribute_strategy.scope():  # read inside the (mirrored) train step
            frozen = build_model(alone, self.schema, train=False)
        frozen.booster_checkpoint().read(path).assert_consumed()
        frozen.trainable = False
        tf.train.Checkpoint(booster=self.booster).read(path).expect_partial()
        self.__dict__["frozen_booster"] = frozen
        # Keras traced its step functions with the booster training: trace them again.
        self.train_function = self.make_train_function(force=True)
        self.test_function = None

    def booster_checkpoint(self) -> tf.train.Checkpoint:
        """What the booster's scores depend on, its tower and the table it reads, by
        object path (model selection keeps them at the booster's own best epoch)."""
        parts = {"booster": self.booster}
        if self.booster.reads_embeddings:
            parts["table"] = self.embedding
        return tf.train.Checkpoint(**parts)

    def _read_tables(self) -> list[Embedding]:
        """The embedding tables a training tower reads (LR reads none)."""
        tables = []
        if self.booster_trains and self.booster.reads_embeddings:
            tables.append(self.embedding)
        for net in self.light_nets.values():
            table = self.light_table(net)
            tables += [] if table is None or table in tables else [table]
        return tables

    def _add_embedding_l2(self, ids: tf.Tensor) -> None:
        """Adds model.embedding_l2 · Σ_fields ||row||², averaged over the global batch, and
        (model.embedding_table_l2 / 2) · Σ_tables ||E||² once per step, over the embedding
        tables read and the towers' first-order tables."""
        model = self.rocket_config.model
        tables = self._read_tables()
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if model.embedding_l2:
            per_example = [tf.reduce_sum(tf.square(table(ids)), axis=[1, 2]) for table in tables]
            for tower, processor, fields in self._first_order_towers(ids):
                weights = first_order_weights(tower, fields, processor)
                per_example.append(tf.reduce_sum(tf.square(weights), axis=1))
            self.add_loss(
                tf.nn.compute_average_loss(
                    model.embedding_l2 * tf.add_n(per_example),
                    global_batch_size=tf.shape(ids)[0] * replicas,
                )
            )
        if model.embedding_table_l2:
            # Each replica adds its share: the gradients summed over replicas are one step's.
            variables = [t.table for t in tables] + self._row_variables()
            squares = tf.add_n([tf.reduce_sum(tf.square(v)) for v in variables])
            self.add_loss(0.5 * model.embedding_table_l2 * squares / replicas)

    def _first_order_towers(self, ids: tf.Tensor):
        """(tower, its processor, its fields' ids) of each tower with first-order weights."""
        out = []
        for tower in self._booster_towers() if self.booster_trains else []:
            if tower.uses_first_order:
                out.append((tower, self.processor, ids))
        for net in self.light_nets.values():
            if net.tower.uses_first_order:
                out.append((net.tower, self.light_processor, self._light_ids(ids)))
        return out

    def _light_ids(self, ids: tf.Tensor) -> tf.Tensor:
        """The light net's slots of all the row ids [B, S] (privileged ones left out)."""
        if len(self._light_cat_idx) < ids.shape[1]:
            return tf.gather(ids, self._light_cat_idx, axis=1)
        return ids

    def _row_variables(self) -> list[tf.Variable]:
        nets = self._booster_towers() if self.booster_trains else []
        nets += [n.tower for n in self.light_nets.values()]
        return [v for t in nets for v in t.row_variables()]

    @staticmethod
    def tower_inputs(tower, table, processor, ids) -> tuple[tf.Tensor, dict]:
        """What a tower reads besides the dense values: (embeddings [B, F, d], keyword
        arguments: `first_order` [B, F] and `sequences` for the towers that take them).

        Args:
            tower: the tower.
            table: (row ids [B, S]) -> rows [B, S, d]: a training table, or the lookup of an
                export's copy; pooled into fields [B, F, d] by the processor.
            processor: the FeatureProcessor of the tower's fields.
            ids: its row ids [B, S].
        """
        kwargs = {}
        if tower.reads_embeddings:
            slots = table(ids)
            embeddings = processor.pool(slots, ids)
            if tower.uses_sequences:
                kwargs["sequences"] = processor.sequences(slots, ids)
        else:  # LR: no table is read at all, so an export holds none
            embeddings = tf.zeros([tf.shape(ids)[0], len(processor.categorical), 0])
        if tower.uses_first_order:
            kwargs["first_order"] = processor.pool(first_order_weights(tower, ids, processor), ids)
        return embeddings, kwargs

    @classmethod
    def tower_output(
        cls, tower, table, processor, ids, dense, training, call=None
    ) -> towers.TowerOutput:
        """A tower's float32 output from its fields' row ids (full offsets) and dense values
        (see `tower_inputs`); `call`: how to call the tower, if not directly (its
        XLA-compiled call, `_xla`)."""
        embeddings, kwargs = cls.tower_inputs(tower, table, processor, ids)
        return _float32((call or tower)(embeddings, dense, training=training, **kwargs))

    def _xla(self, tower):
        """The tower itself, or (train.jit_compile) an XLA-compiled call of it.

        Only the towers are compiled: hashing and parsing of raw strings stay outside, since
        XLA has no string type. Exports never use this, so servers need no XLA.
        """
        if not self.rocket_config.train.jit_compile:
            return tower
        if tower.name not in self._xla_calls:
            self._xla_calls[tower.name] = tf.function(tower.__call__, jit_compile=True)
        return self._xla_calls[tower.name]

    def _light_from_ids(self, ids, dense, training, call=None, net=None) -> towers.TowerOutput:
        """A light net's output (`net`, by default the selected one) from its row ids."""
        net = net or self.lead
        if self.light_embedding is not None:
            table = self.light_embedding
        else:

            def table(ids):
                # The scale keeps the light nets' pull off the rows of a training booster;
                # a stopped one reads its own frozen copy.
                embeddings = self.embedding(ids)
                if not self.booster_trains:
                    return embeddings
                return scale_gradient(embeddings, net.gradient_scale)

        with _serving_precision(net.tower, training):
            return self.tower_output(
                net.tower, table, self.light_processor, ids, dense, training, call
            )

    def light_logits(self, features: dict[str, tf.Tensor], lookup=None) -> tf.Tensor:
        """Light scores from the light net's own (serving) inputs only; inference mode.

        Args:
            features: raw serving columns, {column: [B]}.
            lookup: (row ids [B, F], the F feature names) -> embeddings [B, F, d], to read
                another copy of the light rows (an export's, see rocketctr/serving); by
                default the training table.
        """
        ids, dense = self.light_processor(features)
        if lookup is None:
            return self._light_from_ids(ids, dense, training=False).logits
        names = self.light_processor.slot_names
        with _serving_precision(self.light, False):
            return self.tower_output(
                self.light, lambda ids: lookup(ids, names), self.light_processor, ids, dense, False
            ).logits

    def light_signatures(self, lookup: Lookup) -> dict[str, VectorSignature]:
        """The selected light net's own serving signatures (`Tower.serving_signatures`),
        computing in float32 as its scores do when it does not train."""
        tower = self.light

        def in_float32(fn):
            def run(features):
                with _serving_precision(tower, False):
                    return fn(features)

            return run

        return {
            name: dataclasses.replace(signature, fn=in_float32(signature.fn))
            for name, signature in tower.serving_signatures(self.schema, lookup).items()
        }

    def tower_view(self, tower: str) -> tf_keras.Model:
        """A functional view of the "light" or "booster" tower, or of a booster of an
        ensemble, "booster_<name>" (see `towers.tower_view`): `model.tower_view("light")
        .summary()` shows its layers, shapes and connections."""
        if tower in self.booster_members:
            net = self.booster_members[tower]
        elif not getattr(self, f"has_{tower}", False):
            raise ValueError(
                f"The model has no {tower!r} tower (mode {self.rocket_config.distill.mode!r})."
            )
        elif tower == "booster" and self.booster_members:
            raise ValueError(
                "The booster is an ensemble: view each of its boosters, "
                f"{list(self.booster_members)}."
            )
        else:
            net = getattr(self, tower)
        processor = self.light_processor if tower == "light" else self.processor
        return towers.tower_view(
            net,
            towers.TowerInputs.of(processor, self.schema),
            self.rocket_config.model.embedding_dim,
        )

    def light_table(self, net: LightNet | None = None) -> Embedding | None:
        """The table a light net (by default the selected one) reads: its own, or the
        shared one; None for LR."""
        if not (net or self.lead).tower.reads_embeddings:
            return None
        return self.light_embedding or self.embedding

    # ----------------------------------------------------------------------------- losses
    @property
    def distills(self) -> bool:
        """Whether the light net has a teacher: the booster, peers or a finished run."""
        return self.teacher is not None

    @property
    def global_step(self) -> tf.Variable:
        # Every mode has a table of rows (embeddings, or LR's first-order weights), so this
        # optimizer steps on every batch.
        return self.embedding_optimizer.iterations

    def compute_losses(self, features, labels, training: bool) -> dict[str, tf.Tensor]:
        """Per-batch losses, each averaged with the global batch size (tf.distribute-safe).

        Returns a dict with "loss" (the total to minimise), "<light net>_bce" of each light
        net, "booster_bce" (the teacher's: an ensemble's mixture) and "booster_<name>_bce"
        of each booster of an ensemble, each light net's distillation losses by name
        (unweighted, see `LightNet.loss_names`), "hint_weight" (λ at this step), and the
        towers' logits. Each light net's `Distiller` composes its terms; the boosters' loss
        counts once.
        """
        labels = tf.reshape(tf.cast(labels, tf.float32), [-1])
        outputs = self.tower_outputs(features, training=training)
        global_batch = tf.shape(labels)[0] * tf.distribute.get_strategy().num_replicas_in_sync
        teacher, scale = self.teacher(features, outputs) if self.distills else (None, 1.0)
        column = next((d.group_column for d in self._distillers if d.group_column), None)
        if column and column not in features:
            raise ValueError(f"distill.methods need the group column {column!r} in the batch.")
        groups = tf.reshape(features[column] if column else tf.zeros_like(labels), [-1])
        scale = tf.convert_to_tensor(scale, tf.float32)
        nets = list(self.light_nets.values()) or [None]
        losses, totals = {}, []
        for i, net in enumerate(nets):
            inputs = DistillerInputs(
                labels,
                outputs.get(net.name) if net else None,
                self._label_learners(outputs) if i == 0 else (),  # the boosters' BCE counts once
                teacher,
                scale,
                groups,
                self.global_step,
            )
            distiller = net.distiller if net else self._distillers[0]
            per_example, weight = distiller(inputs)
            average = {
                name: tf.nn.compute_average_loss(value, global_batch_size=global_batch)
                for name, value in per_example.items()
            }
            totals.append(average.pop("total"))
            if i == 0:
                losses["booster_bce"] = average["booster_bce"]
                losses["hint_weight"] = weight
            if net:
                losses[f"{net.name}_bce"] = average["light_bce"]
            prefix = net.loss_prefix if net else ""
            losses.update({prefix + m: average[m] for m in distiller.loss_names})
        losses["loss"] = tf.add_n(totals)
        # An ensemble's: the mixture's logloss as booster_bce (the distiller's sums every
        # booster's), and each booster's.
        for tower in ("booster", *self.booster_members) if self.booster_members else ():
            bce = tf.nn.sigmoid_cross_entropy_with_logits(labels, outputs[tower].logits)
            losses[f"{tower}_bce"] = tf.nn.compute_average_loss(bce, global_batch_size=global_batch)
        return {**losses, **{f"{t}_logits": o.logits for t, o in outputs.items()}}

    def _label_learners(self, outputs: dict) -> tuple[towers.TowerOutput, ...]:
        """The booster outputs the labels train (see `DistillerInputs.boosters`): the
        booster's; an ensemble's boosters', and a gated mixture's (its gate learns)."""
        if not self.has_booster:
            return ()
        members = self.booster_members
        if not members:
            return (outputs["booster"],)
        gated = self.booster.gate is not None
        return tuple(outputs[n] for n in members) + ((outputs["booster"],) if gated else ())

    # ----------------------------------------------------------------------------- steps
    def embedding_variables(self) -> list[tf.Variable]:
        """The embedding tables a tower reads and the towers' first-order tables."""
        tables = [v for layer in self._read_tables() for v in layer.trainable_variables]
        return tables + self._row_variables()

    def light_variables(self, net: LightNet | None = None) -> list[tf.Variable]:
        """A light net's (by default the selected one's) tower weights when it has its own
        optimizer, its first-order table aside."""
        net = net or self.lead
        if not net.optimizer:
            return []
        rows = {id(v) for v in net.tower.row_variables()}
        return [v for v in net.tower.trainable_variables if id(v) not in rows]

    def dense_variables(self) -> list[tf.Variable]:
        own = [v for net in self.light_nets.values() for v in self.light_variables(net)]
        if self.has_booster and not self.booster_trains:
            own += self.booster.trainable_variables
        other_ids = {id(v) for v in self.embedding_variables() + own}
        return [v for v in self.trainable_variables if id(v) not in other_ids]

    def optimizer_groups(self) -> list[tuple[tf_keras.optimizers.Optimizer, list[tf.Variable]]]:
        """(optimizer, variables) for each group of variables that has any."""
        groups = [
            (self.embedding_optimizer, self.embedding_variables()),
            (self.dense_optimizer, self.dense_variables()),
            *((net.optimizer, self.light_variables(net)) for net in self.light_nets.values()),
        ]
        return [(optimizer, variables) for optimizer, variables in groups if variables]

    @property
    def all_optimizers(self) -> list[tf_keras.optimizers.Optimizer]:
        own = [net.optimizer for net in self.light_nets.values() if net.optimizer]
        return [self.embedding_optimizer, self.dense_optimizer, *own]

    def light_weights(self, net: LightNet) -> list[tf.Variable]:
        """What a light net's served scores depend on: its tower's weights and the table it
        reads (model selection keeps them per light net)."""
        table = self.light_table(net)
        return list(net.tower.weights) + (list(table.weights) if table is not None else [])

    def build_optimizers(self) -> None:
        """Creates optimizer slots up front, so a checkpoint restores them immediately."""
        for optimizer, variables in self.optimizer_groups():
            optimizer.build(variables)

    # Batches of the first epoch of the next `fit` that were trained before it: a run
    # resumed from a mid-epoch backup sets it (rocketctr/training/resume.py).
    resume_epoch_step = 0

    def _maybe_load_initial_counters_from_ckpt(self, steps_per_epoch, initial_epoch):
        # tf_keras' hook for resuming mid-epoch (its BackupAndRestore uses it): Keras then
        # numbers the first epoch's batches from here and ends the epoch at the same batch
        # count as an uninterrupted run.
        step, self.resume_epoch_step = self.resume_epoch_step, 0
        return initial_epoch, step

    def train_step(self, data):
        features, labels = data[0], data[1]
        groups = self.optimizer_groups()
        variables = [v for _, group in groups for v in group]
        with tf.GradientTape() as tape:
            losses = self.compute_losses(features, labels, training=True)
            loss = losses["loss"] + tf.add_n(self.losses) if self.losses else losses["loss"]
        grads = tape.gradient(loss, variables)
        start = 0
        # The optimizers' step counters do not depend on the batch: without this, the call
        # that finds a one-pass epoch's data exhausted would still count a step.
        with tf.control_dependencies([loss]):
            for optimizer, group in groups:
                end = start + len(group)
                optimizer.apply_gradients(zip(grads[start:end], group, strict=True))
                start = end
        return self._update_metrics(labels, losses)

    def test_step(self, data):
        features, labels = data[0], data[1]
        return self._update_metrics(labels, self.compute_losses(features, labels, training=False))

    def predict_step(self, data):
        features = data[0] if isinstance(data, tuple) else data
        return {
            k.replace("_logits", "_probs"): tf.sigmoid(v)
            for k, v in self(features, training=False).items()
        }

    def _update_metrics(self, labels, losses) -> dict[str, tf.Tensor]:
        # Each replica's loss is its share of the global mean (summed over replicas, not
        # averaged); Mean metrics average over replicas, so scale back to the true mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for name, tracker in self._trackers.items():
            tracker.update_state(losses[name] * (1 if name == "hint_weight" else replicas))
        labels = tf.reshape(labels, [-1])
        for tower, auc in self._aucs.items():
            if f"{tower}_logits" in losses:
                auc.update_state(labels, tf.sigmoid(losses[f"{tower}_logits"]))
        for net in self.light_nets.values():
            net.spread.update_state(losses[f"{net.name}_logits"])
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self) -> list:
        boosters = ["booster", *self.booster_members] if self.has_booster else []
        towers_present = [*self.light_nets, *boosters]
        trackers = [self._trackers["loss"]] + [self._trackers[f"{t}_bce"] for t in towers_present]
        if self.distills:
            names = [m for net in self.light_nets.values() for m in net.loss_names]
            trackers += [self._trackers[n] for n in (*names, "hint_weight")]
        spreads = [net.spread for net in self.light_nets.values()]
        return trackers + [self._aucs[t] for t in towers_present] + spreads


def first_order_weights(tower, ids: tf.Tensor, processor: FeatureProcessor) -> tf.Tensor:
    """The tower's first-order weights [B, S] of its fields' row ids [B, S]. Read in the
    tower's name scope, so the table (built on first read) is named by the tower's role."""
    with tf.name_scope(tower.name):
        return tower.first_order(ids, processor.slot_fields)


def example_batch(schema: Schema) -> dict[str, tf.Tensor]:
    """One placeholder row of every column a batch holds (the model's inputs and the group
    column): calling a model on it creates its variables."""
    columns = [*schema.input_columns, *([schema.group_column] if schema.group_column else [])]
    return {c: tf.constant([""] if schema.is_string_column(c) else [0.0]) for c in columns}


def _serving_precision(tower: towers.Tower, training: bool | None):
    """A light net computes in float32 whenever it does not train, whatever
    `train.mixed_precision`: validation, evaluation, predictions and its export all score
    what is served (TF Serving's machines need no bf16 units; bf16 scores differ from
    float32 ones by ~1e-3). Its weights are float32 either way. Not on the call that builds
    the tower: its variables must be made under its own policy."""
    if training or not tower.built:
        return contextlib.nullcontext()
    return float32_compute(tower)


def _float32(output: towers.TowerOutput) -> towers.TowerOutput:
    """A tower's output in float32 (bf16 towers, train.mixed_precision, too)."""
    return tf.nest.map_structure(lambda t: tf.cast(t, tf.float32), output)


def build_model(
    config: Config,
    schema: Schema,
    model_class: type[CoTrainModel] = CoTrainModel,
    teacher: Teacher | None = None,
    train: bool = True,
) -> CoTrainModel:
    """Builds and compiles the model; its variables (the distiller's too) exist when this
    returns.

    Args:
        config: the resolved config.
        schema: the dataset schema.
        model_class: CoTrainModel or a subclass (benchmarks).
        teacher: see `CoTrainModel`.
        train: False for a model that only scores, its weights read from a checkpoint
            next: its towers' and tables' variables exist, not the optimizers' slots (each
            as large as what it updates), and its tables hold no value until restored.
    """
    model = model_class(config, schema, teacher=teacher, restored=not train, name="rocketctr")
    if not train:
        # Traced, not run: the variables are made, and no table is read before its values
        # are restored (a variable a gather has read is copied on every later write).
        tf.function(model).get_concrete_function(example_batch(schema))
        return model
    # Never XLA for the whole step: it receives raw strings. train.jit_compile compiles the
    # towers only (see CoTrainModel._xla).
    model.compile(optimizer=model.dense_optimizer, jit_compile=False)
    example = example_batch(schema)
    model(example)
    # One loss pass builds the distillation methods' weights before the optimizers' slots.
    model.compute_losses(example, tf.constant([0.0]), training=False)
    model.build_optimizers()
    return model
