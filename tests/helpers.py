"""Small builders shared by tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import rocketctr  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# isort: split
import numpy as np
import tensorflow as tf

from rocketctr.config.core import Config
from rocketctr.model.cotrain import build_model
from rocketctr.serving.verification import loaded_variables

REPO = Path(__file__).resolve().parents[1]
# <repo>/../shared/data: real data kept outside the repository (not redistributable).
SHARED_DATA = REPO.parent / "shared" / "data"

# Nets small enough that a test trains them in seconds; a test states what it changes.
TINY_MODEL = {
    "embedding_dim": 4,
    "booster": {"name": "dcn", "hidden_units": [8], "num_cross_layers": 1},
    "light": {"name": "mlp", "hidden_units": [4]},
}

# `rocketctr train` flags for tiny nets, for tests that run the command line (each adds
# its batch size).
TINY_FLAGS = (
    "--set=model.embedding_dim=4",
    "--set=model.booster.hidden_units=[16]",
    "--set=model.booster.num_cross_layers=1",
)


def tiny_train_command(data: tuple, model_dir, *flags: str) -> list[str]:
    """`python -m rocketctr.cli train` of TINY_FLAGS' nets on (train, eval) files, without
    export, plus a test's own `flags` (its batch size among them)."""
    return [
        sys.executable,
        "-m",
        "rocketctr.cli",
        "train",
        f"--train={data[0]}",
        f"--eval={data[1]}",
        f"--model_dir={model_dir}",
        *TINY_FLAGS,
        "--noexport",
        *flags,
    ]


def tiny_config(model: dict[str, Any] | None = None, **sections: Any) -> Config:
    """A config of TINY_MODEL's nets, with a test's changes.

    Args:
        model: model keys that replace TINY_MODEL's (a tower replaces the whole tower;
            `lights` replaces `light`, `boosters` replaces `booster`).
        **sections: the other sections (`schema`, `train`, `distill`, `export`), as in
            `Config.from_dict`.

    Returns:
        The config; chain `.replace({"dotted.key": value})` for one knob deeper down.
    """
    model = {**TINY_MODEL, **(model or {})}
    if "lights" in model:
        del model["light"]
    if "boosters" in model:
        del model["booster"]
    return Config.from_dict({"model": model, **sections})


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python that imports this checkout's rocketctr, without
    an outer TF_CONFIG (`extra` may set one)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def temporaries(directory: Path) -> list[Path]:
    """What an interrupted write leaves under `directory`: TensorFlow's ckpt-N_temp/ and
    checkpoint.tmp<hex>, rocketctr's .partial files and .tmp-<version>-<pid>/ exports."""
    return [
        p
        for p in directory.rglob("*")
        if "_temp" in p.name or ".tmp" in p.name or p.name.endswith(".partial")
    ]


def random_features(schema, num_rows: int, seed: int = 0) -> dict[str, tf.Tensor]:
    """Raw features as readers deliver them: strings for categorical columns, floats else."""
    rng = np.random.default_rng(seed)
    features = {}
    for column in schema.input_columns:
        if schema.is_string_column(column):
            features[column] = tf.constant(rng.integers(0, 50, num_rows).astype(str))
        else:
            features[column] = tf.constant(rng.normal(1.0, 2.0, num_rows).astype(np.float32))
    return features


def frappe_rows_of_four_users(schema, num_rows: int = 32) -> dict[str, tf.Tensor]:
    """Frappe rows (`schema`: the frappe schema) with ids in range (id_offset + k): 4 users
    ("user", the schema's user_id) of num_rows / 4 rows each, for ranking distillation."""
    rng = np.random.default_rng(0)
    features = {
        f.name: tf.constant((f.id_offset + rng.integers(0, f.num_ids, num_rows)).astype(str))
        for f in schema.categorical
    }
    features["user"] = tf.constant(np.repeat(["3", "5", "8", "9"], num_rows // 4))
    return features


def random_labels(num_rows: int, seed: int = 0) -> tf.Tensor:
    return tf.constant((np.random.default_rng(seed).random(num_rows) < 0.4).astype(np.float32))


def free_ports(num_ports: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (held open together, so they are distinct)."""
    sockets = [socket.socket() for _ in range(num_ports)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _example(row: dict) -> bytes:
    """A serialized tf.Example: str as bytes_list, float as float_list, int as int64_list."""
    feature = {}
    for name, value in row.items():
        if value is None:
            continue  # a missing value is an absent feature
        if isinstance(value, list):  # several values: malformed for a scalar column
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=value))
        elif isinstance(value, str):
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
        elif isinstance(value, float):
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        else:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_tfrecord(path, rows: list[dict], gzipped: bool = False) -> str:
    """Writes one tf.Example per row (None: feature absent; a list: several bytes values)."""
    options = tf.io.TFRecordOptions(compression_type="GZIP" if gzipped else "")
    with tf.io.TFRecordWriter(str(path), options) as writer:
        for row in rows:
            writer.write(_example(row))
    return str(path)


def write_rows(path: Path, rows: list[tuple]) -> str:
    """Writes one tab-separated line per row; returns the path."""
    path.write_text("".join("\t".join(str(v) for v in row) + "\n" for row in rows))
    return str(path)


def rows_of(columns: dict) -> list[dict]:
    """Column lists -> one dict per row."""
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]


# ------------------------------------------------------------------------------ exports
def trained_model(config: Config, schema, steps: int = 2):
    """A model after `steps` train steps on random rows of 32, so that its weights and
    optimizer slots are not the initial ones."""
    model = build_model(config, schema)
    for step in range(steps):
        model.train_step((random_features(schema, 32, seed=step), random_labels(32, seed=step)))
    return model


def light_probabilities(model, features: dict) -> np.ndarray:
    """The in-memory light net's probabilities: what an export must serve."""
    return tf.sigmoid(model.light_logits(features)).numpy()


def export_variables(path: Path) -> list[tf.Variable]:
    """The variables of the SavedModel at `path`, each once."""
    return loaded_variables(tf.saved_model.load(str(path)))


def serve(path: Path, features: dict) -> dict[str, np.ndarray]:
    """Outputs of the export's `serving_default` on `features` (a batch per column)."""
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    out = signature(**{k: tf.constant(features[k], dtype=s.dtype) for k, s in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}


def saved_model_cli(path: Path) -> str:
    """What `saved_model_cli show --all` prints for the SavedModel at `path`."""
    cli = Path(sys.executable).parent / "saved_model_cli"
    result = subprocess.run(
        [str(cli), "show", "--all", "--dir", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def score_in_plain_tensorflow(paths: dict, features: dict, tmp_path: Path) -> dict:
    """{name: probabilities} of `serving_default` of each export, in a fresh Python process
    that imports TensorFlow only (TF Serving's view: no rocketctr, no Keras 2 switch)."""
    inputs = {  # numpy's own unicode arrays: np.load needs no pickle for them
        c: np.array([s.decode() for s in v.numpy()]) if v.dtype == tf.string else v.numpy()
        for c, v in features.items()
    }
    np.savez(tmp_path / "inputs.npz", **inputs)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import tensorflow as tf
        data = np.load({str(tmp_path / "inputs.npz")!r})
        out = {{}}
        for name, path in { ({n: str(p) for n, p in paths.items()})!r}.items():
            signature = tf.saved_model.load(path).signatures["serving_default"]
            inputs = signature.structured_input_signature[1]
            scores = signature(**{{k: tf.constant(data[k]) for k in inputs}})
            out[name] = scores["probabilities"].numpy()
        assert "rocketctr" not in sys.modules, "rocketctr was imported"
        np.savez({str(tmp_path / "out.npz")!r}, **out)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        check=True,
        timeout=180,
        capture_output=True,
    )
    return dict(np.load(tmp_path / "out.npz"))
