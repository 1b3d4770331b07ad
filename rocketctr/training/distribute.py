"""Picking a tf.distribute strategy the way Kubernetes, TFX and Vertex configure it (TF_CONFIG).

No home-made distribution layer: this only chooses one of TensorFlow's strategies and says
which worker is the chief (the one that writes checkpoints, logs, metrics and exports).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from rocketctr.config.core import STRATEGIES, ConfigError

# Variables smaller than this stay whole on one parameter server; larger ones (the embedding
# table) are split into up to one shard per parameter server, or `train.table_shards`.
MIN_SHARD_BYTES = 256 << 10


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

    auto: a "ps" job in TF_CONFIG -> parameter_server; several workers -> multi_worker;
    several GPUs -> mirrored; otherwise default.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {list(STRATEGIES)}. Received: {name!r}")
    cluster = _tf_config().get("cluster", {})
    if name != "auto":
        return name
    if "ps" in cluster:
        return "parameter_server"
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    if workers > 1:
        return "multi_worker"
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return "mirrored"
    return "default"


def make_strategy(name: str, table_shards: int = 0) -> tf.distribute.Strategy:
    """Builds the strategy named by `train.strategy` (see `resolve_strategy_name`).

    Args:
        name: `train.strategy`.
        table_shards: `train.table_shards`, how many shards each large variable (the
            embedding table) is split into over the parameter servers; 0: one per server.

    Raises:
        ConfigError: table_shards is set and the strategy is not parameter_server.
    """
    resolved = resolve_strategy_name(name)
    if table_shards and resolved != "parameter_server":
        raise ConfigError(
            f"train.table_shards ({table_shards}) splits the tables over parameter servers: "
            f"it needs the parameter_server strategy (TF_CONFIG with a ps job). This run's "
            f"strategy: {resolved!r}."
        )
    if resolved == "parameter_server":
        return _parameter_server_strategy(table_shards)
    if resolved == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if resolved == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _parameter_server_strategy(table_shards: int) -> tf.distribute.ParameterServerStrategy:
    """ParameterServerStrategy from TF_CONFIG; large variables are sharded over the ps tasks
    (`table_shards` shards, placed round-robin, or one per task).

    Only the coordinator ("chief" task) builds it; worker and ps tasks run `serve_cluster_task`.
    """
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    cluster = resolver.cluster_spec().as_dict()
    num_ps = len(cluster.get("ps", []))
    if not num_ps or not cluster.get("worker") or resolver.task_type != "chief":
        raise ConfigError(
            "strategy parameter_server needs TF_CONFIG with 'chief', 'worker' and 'ps' jobs, "
            "run on the chief (the coordinator). Received: jobs "
            f"{sorted(cluster)}, task {resolver.task_type!r}"
        )
    # A worker or ps task that restarts is waited for instead of failing the step at once.
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=MIN_SHARD_BYTES, max_shards=num_ps
    )
    if table_shards:
        partitioner = fixed_shards_partitioner(table_shards)
    return tf.distribute.ParameterServerStrategy(resolver, variable_partitioner=partitioner)


def fixed_shards_partitioner(shards: int):
    """A variable partitioner: variables of MIN_SHARD_BYTES or more split into `shards`
    shards along their rows (or one per row, for fewer rows), smaller ones whole."""

    def partition(shape: tf.TensorShape, dtype: tf.DType) -> list[int]:
        rank = len(shape)
        if rank == 0 or shape.num_elements() * dtype.size < MIN_SHARD_BYTES:
            return [1] * rank
        return [min(shards, int(shape[0]))] + [1] * (rank - 1)

    return partition


def is_parameter_server(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.ParameterServerStrategy)


def cluster_task() -> tuple[str, int] | None:
    """(type, index) of this process when it is a worker or ps task of a ps cluster, else None.

    Those tasks only serve the coordinator's ops: see `serve_cluster_task`.
    """
    config = _tf_config()
    task = config.get("task", {})
    if "ps" not in config.get("cluster", {}) or task.get("type") not in ("worker", "ps"):
        return None
    return task["type"], int(task.get("index", 0))


def serve_cluster_task() -> None:
    """Runs this worker or ps task's tf.distribute.Server until the process is killed."""
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    workers = len(resolver.cluster_spec().as_dict().get("worker", []))
    config = tf.compat.v1.ConfigProto()
    # With fewer inter-op threads than workers + 1 the cluster can hang (TF b/172296720).
    config.inter_op_parallelism_threads = max(config.inter_op_parallelism_threads, workers + 1)
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    server = tf.distribute.Server(
        resolver.cluster_spec(),
        job_name=resolver.task_type,
        task_index=resolver.task_id,
        protocol=resolver.rpc_layer or "grpc",
        config=config,
        start=True,
    )
    server.join()


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """True on the one worker that writes shared outputs (always true off multi-worker).

    Without a strategy, TF_CONFIG says (for what runs before the strategy exists).
    """
    if strategy is None:
        config = _tf_config()
        task = config.get("task") or {}
        task_type, task_id = task.get("type"), int(task.get("index", 0))
        cluster = config.get("cluster", {})
    else:
        resolver = getattr(strategy, "cluster_resolver", None)
        if resolver is None:
            return True
        task_type, task_id = resolver.task_type, resolver.task_id
        cluster = resolver.cluster_spec().as_dict() if task_type else {}
    if not task_type or task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def worker_dir(path: str, strategy: tf.distribute.Strategy) -> str:
    """The chief writes to `path`; other workers write collective saves to a private dir."""
    if is_chief(strategy):
        return path
    resolver = strategy.cluster_resolver
    return os.path.join(path, f".worker-{resolver.task_type}-{resolver.task_id}")
