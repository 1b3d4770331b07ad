"""`rocketctr` command line. Kept tiny: all logic lives in importable modules.

rocketctr train --config <preset|yaml> --train <glob> --eval <glob> --model_dir <dir>
rocketctr train --model_dir runs/demo          # built-in synthetic Criteo-shaped data
rocketctr evaluate --model_dir <dir> --eval <glob>    # score the newest readable checkpoint
rocketctr export --model_dir <dir> --export_dir <base> [--set=export.embedding_dtype=int8]

Parameter-server clusters (TF_CONFIG with a "ps" job): every task runs the same
`rocketctr train ...` command; on "worker" and "ps" tasks it starts that task's
tf.distribute.Server and blocks until killed, the "chief" task coordinates the training.
Codistillation: N processes with --replica_index=0..N-1 --shared_dir=<dir shared by all>
--set=distill.codistill_replicas=N, each with its own --model_dir.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import traceback
from pathlib import Path

# TensorFlow's C++ INFO lines (CUDA probing, oneDNN notes) drown the progress bars.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from absl import app, flags, logging

import rocketctr  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

FLAGS = flags.FLAGS
flags.DEFINE_string("config", "default", "A preset name (see rocketctr/presets) or a YAML path.")
flags.DEFINE_list("train", [], "Training file globs (comma-separated). Omit for synthetic data.")
flags.DEFINE_list("eval", [], "Evaluation file globs (comma-separated).")
flags.DEFINE_string("model_dir", "runs/default", "Checkpoints, logs, config and metrics go here.")
flags.DEFINE_enum("bad_rows", None, ["error", "skip"], "Malformed rows: fail or skip+count.")
flags.DEFINE_enum(
    "strategy",
    None,
    ["auto", "default", "mirrored", "multi_worker", "parameter_server"],
    "tf.distribute strategy (overrides train.strategy); auto reads TF_CONFIG and the devices. "
    "With parameter_server, `train` on a worker or ps task serves that task and blocks.",
)
flags.DEFINE_integer(
    "replica_index", None, "Codistillation: this replica's index in [0, codistill_replicas)."
)
flags.DEFINE_string(
    "shared_dir", None, "Codistillation: directory all replicas share (replica-<i>/ each)."
)
flags.DEFINE_multi_string("set", [], "Config override key=value, e.g. train.batch_size=512.")
flags.DEFINE_string(
    "export_dir",
    None,
    "Export base dir TF Serving watches (versions 1, 2, ...). Default: <model_dir>/export.",
)
flags.DEFINE_bool(
    "verbose", False, "On an input, config or run-dir error, print the whole trace too."
)
flags.DEFINE_bool("export", True, "train: export the light net for TF Serving at the end.")
flags.DEFINE_integer("synthetic_train_rows", 300_000, "Rows of built-in synthetic train data.")
flags.DEFINE_integer("synthetic_eval_rows", 50_000, "Rows of built-in synthetic eval data.")

flags.DEFINE_list("catalogue", [], "item_vectors: item rows (CSV/TSV with header, Parquet).")
flags.DEFINE_string("output", None, "item_vectors: Parquet file of item id -> vector.")
flags.DEFINE_string("id_column", None, "item_vectors: the item id column (default: inferred).")

COMMANDS = ("train", "evaluate", "export", "item_vectors")


def resolve_config():
    from rocketctr.config import load_config, parse_override

    config = load_config(FLAGS.config)
    overrides = dict(parse_override(s) for s in FLAGS.set)
    if FLAGS.bad_rows:
        overrides["train.bad_rows"] = FLAGS.bad_rows
    if FLAGS.strategy:
        overrides["train.strategy"] = FLAGS.strategy
    return config.replace(overrides) if overrides else config


def train_main(argv) -> int:
    config = resolve_config()
    if FLAGS.train and FLAGS.eval:  # before TensorFlow loads: a wrong layout fails at once
        from rocketctr.file_layout import check_layout
        from rocketctr.schema import load_schema

        schema = load_schema(config.schema)
        for patterns in FLAGS.train, FLAGS.eval:
            check_layout(schema, patterns, config.train.bad_rows)

    from rocketctr import distribute, rundir
    from rocketctr.distill.codistill import CodistillReplica

    task = distribute.cluster_task()
    if task is not None:
        print(f"Serving {task[0]} task {task[1]} of the parameter-server cluster until killed.")
        distribute.serve_cluster_task()
        return 0
    replica = None
    if FLAGS.replica_index is not None or FLAGS.shared_dir:
        replica = CodistillReplica(FLAGS.replica_index or 0, FLAGS.shared_dir or "")
    model_dir = Path(FLAGS.model_dir)
    # One run per dir, from its synthetic data to its export (see rundir.hold).
    with rundir.hold(model_dir) if distribute.is_chief() else contextlib.nullcontext():
        return _train_and_export(config, model_dir, replica)


def _train_and_export(config, model_dir: Path, replica) -> int:

    from rocketctr import train
    from rocketctr.data import synthetic

    train_files, eval_files = FLAGS.train, FLAGS.eval
    if bool(train_files) != bool(eval_files):
        raise app.UsageError("Give both --train and --eval, or neither (synthetic data).")
    if not train_files:
        try:
            paths = synthetic.ensure_synthetic(
                config.schema, model_dir / "synthetic", FLAGS.synthetic_train_rows,
                FLAGS.synthetic_eval_rows, seed=config.train.seed,
            )  # fmt: skip
        except ValueError as e:
            raise app.UsageError(str(e)) from None
        train_files, eval_files = [str(paths[0])], [str(paths[1])]
        print(f"No --train/--eval: using built-in synthetic data {paths[0]}, {paths[1]}")
    result = train.train(config, train_files, eval_files, model_dir, replica=replica)
    print(train.summary(result))
    if FLAGS.export and result.is_chief and config.distill.mode != "booster_only":
        from rocketctr import serving

        nothing_trained = result.initial_epoch >= config.train.num_epochs
        if nothing_trained and serving.next_version(export_base()) > 1:
            print(f"Nothing new to export; the latest version is in {export_base()}")
        else:
            path = train.export_trained(result, eval_files, export_base())
            print(f"Exported the light net to {path}: {_described(path)}")
    return 0


def export_base() -> Path:
    return Path(FLAGS.export_dir) if FLAGS.export_dir else Path(FLAGS.model_dir) / "export"


def item_vectors_main(argv) -> int:
    from rocketctr import catalogue

    if not (FLAGS.export_dir and FLAGS.catalogue and FLAGS.output):
        raise app.UsageError("item_vectors needs --export_dir, --catalogue and --output.")
    counts = catalogue.write_item_vectors(
        FLAGS.export_dir, FLAGS.catalogue, None, FLAGS.output, id_column=FLAGS.id_column
    )
    print(f"Wrote {counts['items_written']:,} item vectors of dimension {counts['dimension']} "
          f"to {FLAGS.output} ({counts['rows_read']:,} rows read, "
          f"{counts['duplicate_ids_skipped']:,} duplicate ids skipped)")  # fmt: skip
    return 0


def evaluate_main(argv) -> int:

    from rocketctr import train
    from rocketctr.metrics import format_table

    if not FLAGS.eval:
        raise app.UsageError("evaluate needs --model_dir and --eval (the rows to score).")
    metrics, path, bad_rows = train.evaluate_run(FLAGS.model_dir, FLAGS.eval, FLAGS.bad_rows)
    print(f"Scored {path}")
    print(format_table(metrics) + "\neval: " + bad_rows)
    return 0


def export_main(argv) -> int:
    from rocketctr import serving
    from rocketctr.config import parse_override

    overrides = dict(parse_override(s) for s in FLAGS.set)  # export.* keys only
    path = serving.export_from_model_dir(FLAGS.model_dir, export_base(), overrides=overrides)
    print(f"Exported the light net to {path}: {_described(path)}")
    return 0


def _described(version_dir: Path) -> str:
    from rocketctr import serving

    return serving.describe_export(serving.read_export_info(version_dir))


def main(argv) -> int:
    command = argv[1] if len(argv) > 1 else None
    if command not in COMMANDS:
        raise app.UsageError(
            f"Usage: rocketctr {{{','.join(COMMANDS)}}} [flags]. Received: {command!r}"
        )
    commands = {
        "train": train_main,
        "evaluate": evaluate_main,
        "export": export_main,
        "item_vectors": item_vectors_main,
    }
    try:
        return commands[command](argv[2:])
    except Exception as e:
        message = user_error_message(e)
        if message is None:
            raise  # a bug, not the user's input: the whole trace
        if FLAGS.verbose:
            traceback.print_exc()
        print(f"rocketctr: error: {message}", file=sys.stderr)
        return 2


def user_error_message(error: Exception) -> str | None:
    """The one-line message of an error in the user's input, config, files or run dir (exit
    code 2, no trace), or None for any other error."""
    from rocketctr.config import ConfigError
    from rocketctr.file_layout import LayoutError
    from rocketctr.schema import SchemaError

    if isinstance(error, (ConfigError, SchemaError, LayoutError, FileNotFoundError)):
        return str(error)
    if sys.modules.get("tensorflow") is None:
        return None  # the errors below come from code that runs with TensorFlow loaded
    import tensorflow as tf

    from rocketctr.catalogue import CatalogueError
    from rocketctr.data import BadRowError
    from rocketctr.rundir import RunLockedError
    from rocketctr.serving.export_error import ExportError

    if isinstance(error, tf.errors.InvalidArgumentError):
        # A bad row found inside the input pipeline: its own message, not TF's graph trace.
        return pipeline_error_message(error)
    if isinstance(error, (ExportError, CatalogueError, BadRowError, RunLockedError)):
        return str(error)
    return None


def pipeline_error_message(error: Exception) -> str:
    """The message a failed input-pipeline check gave (see data/checks.fail_unless), or the
    error's own first line when it is not one of those."""
    text = getattr(error, "message", str(error))
    found = re.search(r"assertion failed: \[(.*?)\](?:\n|$)", text, re.S)
    if found:  # tf.debugging.Assert escapes quotes
        return found.group(1).replace("\\'", "'").replace('\\"', '"')
    return text.strip().splitlines()[0] if text.strip() else repr(error)


def run() -> None:
    logging.set_verbosity(logging.WARNING)
    app.run(main)


if __name__ == "__main__":
    run()
