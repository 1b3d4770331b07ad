"""Codistillation (Anil, Hinton et al. 2018): replicas on different data shards teach each other.

N processes share a directory. Replica i trains on every N-th batch (offset i) of the training
data. Every `distill.codistill_every_steps` steps it saves its light net (embedding tables and
light tower) to `<shared_dir>/replica-<i>/` (atomically, through `tf.train.CheckpointManager`:
the `checkpoint` index file is replaced only after the data files are written) and reloads its
peers' latest checkpoints into frozen copies of the light net. The hint target on its own
batches is then the peers' average light logits: stale predictions, which need no
communication between steps, and carry no gradient (the peers are separate, frozen models).
Until a peer has saved a checkpoint, the hint weight is 0. Every replica is an ordinary run:
any of them can be exported and served.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import tensorflow as tf
import tf_keras

from rocketctr.config.core import Config, ConfigError
from rocketctr.distill.teacher import Teacher
from rocketctr.features.schema import Schema
from rocketctr.model.cotrain import CoTrainModel, example_batch
from rocketctr.towers.base import TowerOutput

log = logging.getLogger("rocketctr")


@dataclass(frozen=True)
class CodistillReplica:
    """Where this process sits among the codistilling replicas (CLI: --replica_index,
    --shared_dir); the number of replicas is `distill.codistill_replicas`."""

    index: int
    shared_dir: str


def replica_dir(shared_dir: str, index: int) -> str:
    return os.path.join(shared_dir, f"replica-{index}")


def validate(config: Config, replica: CodistillReplica | None) -> None:
    d = config.distill
    if d.codistill_replicas == 1:
        if replica is not None:
            raise ConfigError(
                "--replica_index/--shared_dir need distill.codistill_replicas > 1. Received: 1"
            )
        return
    if d.mode == "booster_only":
        raise ConfigError("Codistillation trains the light net; distill.mode is 'booster_only'.")
    if replica is None or not replica.shared_dir:
        raise ConfigError(
            f"distill.codistill_replicas={d.codistill_replicas} needs --replica_index and "
            f"--shared_dir. Received: {replica}"
        )
    if not 0 <= replica.index < d.codistill_replicas:
        raise ConfigError(
            f"--replica_index must be in [0, {d.codistill_replicas}). Received: {replica.index}"
        )


class PeerTeacher(Teacher):
    """The peers' average light logits (no hidden representations), scale 0 until one of
    them has been loaded from a checkpoint."""

    def __init__(self, peers: list[tf_keras.Model], ready: list[tf.Variable]) -> None:
        self.peers, self.ready = peers, ready

    def __call__(self, features, towers):
        del towers
        total, count = 0.0, 0.0
        for peer, ready in zip(self.peers, self.ready, strict=True):
            total += ready * tf.stop_gradient(peer.light_logits(features))
            count += ready
        return TowerOutput(total / tf.maximum(count, 1.0), {}), tf.minimum(count, 1.0)


class Codistillation(tf_keras.callbacks.Callback):
    """Saves this replica every K steps and reloads its peers.

    Its `teacher` (the peers) is the model's: pass it to `build_model`, then attach the
    callback to that model (Keras does so in `fit`).

    Args:
        config: the run's config (`distill.codistill_replicas`, `distill.codistill_every_steps`).
        schema: the dataset schema (peers are built like the model).
        replica: this replica's index and the shared directory.
    """

    def __init__(self, config: Config, schema: Schema, replica: CodistillReplica) -> None:
        super().__init__()
        validate(config, replica)
        self.replica = replica
        self.every_steps = config.distill.codistill_every_steps
        peer_config = config.replace({"distill.mode": "light_only"})  # peers need no booster
        num_replicas = config.distill.codistill_replicas
        self.peer_indices = [i for i in range(num_replicas) if i != replica.index]
        self.peers = [_frozen_light_copy(peer_config, schema) for _ in self.peer_indices]
        # 1.0 once peer j has been loaded from a checkpoint; the hint weight is 0 before any.
        self.ready = [tf.Variable(0.0, trainable=False) for _ in self.peers]
        self.teacher = PeerTeacher(self.peers, self.ready)
        self.loaded = [None for _ in self.peers]
        self.manager = None
        self.saved_step = None
        self._supports_tf_logs = True  # the batch hook never reads logs: no per-step copy

    def set_model(self, model) -> None:
        super().set_model(model)
        if model.teacher is not self.teacher:
            raise ValueError("Build the model with this callback's teacher (build_model).")
        # Peers need only the light net's share: no booster, no optimizer slots to write.
        self.manager = tf.train.CheckpointManager(
            _light_part(model), replica_dir(self.replica.shared_dir, self.replica.index), 3
        )

    def refresh_peers(self) -> int:
        """Loads each peer's newest checkpoint (if new); returns how many peers are loaded."""
        for j, (index, peer) in enumerate(zip(self.peer_indices, self.peers, strict=True)):
            path = tf.train.latest_checkpoint(replica_dir(self.replica.shared_dir, index))
            if path is None or path == self.loaded[j]:
                continue
            try:
                _light_part(peer).restore(path).expect_partial().assert_existing_objects_matched()
            except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError) as e:
                # The peer may have rotated the file away meanwhile; keep its older weights.
                log.warning("Could not load peer checkpoint %s (%s); retrying later.", path, e)
                continue
            self.loaded[j] = path
            self.ready[j].assign(1.0)
        return sum(path is not None for path in self.loaded)

    def on_train_begin(self, logs=None) -> None:
        self.refresh_peers()

    def save(self) -> None:
        step = int(self.model.global_step.numpy())
        if step != self.saved_step:
            self.manager.save(checkpoint_number=step)
            self.saved_step = step

    def on_train_batch_end(self, batch, logs=None) -> None:
        if int(self.model.global_step.numpy()) % self.every_steps == 0:
            self.save()
            self.refresh_peers()

    def on_train_end(self, logs=None) -> None:
        self.save()  # the last word, for peers still training


def _frozen_light_copy(config: Config, schema: Schema) -> tf_keras.Model:
    """A light_only model with its variables built, no optimizers, never trained."""
    peer = CoTrainModel(config, schema, name="rocketctr")
    peer(example_batch(schema))
    peer.trainable = False
    return peer


def _light_part(model: tf_keras.Model) -> tf.train.Checkpoint:
    """The light net's share of a model's checkpoint: its embedding tables and light tower.

    Reads the same variables from a whole-model checkpoint (optimizer slots are positional
    and differ between co_train and light_only models, so they are left out).
    """
    parts = {"embedding": model.embedding, "light": model.light}
    if model.light_embedding is not None:
        parts["light_embedding"] = model.light_embedding
    return tf.train.Checkpoint(model=tf.train.Checkpoint(**parts))


def for_replica(
    config: Config, schema: Schema, replica: CodistillReplica | None, train_ds: tf.data.Dataset
) -> tuple[tf.data.Dataset, Codistillation | None]:
    """This replica's share of the training batches and its callback (None when off), whose
    `teacher` the model is built with."""
    validate(config, replica)
    if config.distill.codistill_replicas == 1:
        return train_ds, None
    shard = train_ds.shard(config.distill.codistill_replicas, replica.index)
    return shard, Codistillation(config, schema, replica)
