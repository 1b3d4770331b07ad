"""Picking a tf.distribute strategy the way Kubernetes, TFX and Vertex configure it (TF_CONFIG).

No home-made distribution layer: this only chooses one of TensorFlow's strategies and says
which worker is the chief (the one that writes checkpoints, logs, metrics and exports).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from rocketctr.config import ConfigError

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({e}). Received: {raw[:200]!r}") from None


def resolve_strategy_name(name: str) -> str:
    """Maps "auto" to a concrete strategy from TF_CONFIG and the visible devices.

    auto: several workers in TF_CONFIG -> multi_worker; a "ps" job -> refused (parameter
    servers are not supported yet); several GPUs -> mirrored; otherwise default.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {list(STRATEGIES)}. Received: {name!r}")
    cluster = _tf_config().get("cluster", {})
    if "ps" in cluster:
        raise ConfigError(
            "TF_CONFIG has a 'ps' job: ParameterServerStrategy is not supported yet. "
            f"Supported strategies: {list(STRATEGIES)}"
        )
    if name != "auto":
        return name
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    if workers > 1:
        return "multi_worker"
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return "mirrored"
    return "default"


def make_strategy(name: str) -> tf.distribute.Strategy:
    """Builds the strategy named by `train.strategy` (see `resolve_strategy_name`)."""
    resolved = resolve_strategy_name(name)
    if resolved == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if resolved == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the one worker that writes shared outputs (always true off multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_dir(path: str, strategy: tf.distribute.Strategy) -> str:
    """The chief writes to `path`; other workers write collective saves to a private dir."""
    if is_chief(strategy):
        return path
    resolver = strategy.cluster_resolver
    return os.path.join(path, f".worker-{resolver.task_type}-{resolver.task_id}")
