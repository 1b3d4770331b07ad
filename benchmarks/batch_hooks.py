"""What the mid-epoch backup callback costs per training step, measured side by side.

    /work/main/.venv/bin/python benchmarks/batch_hooks.py --steps 600 --rounds 6

A small model (emb 4, DCN booster MLP 16, MLP-32 light net, batch 256: steps of a few ms,
where per-step Python work shows) trains on synthetic Criteo-shaped rows cached in memory,
through `model.fit` with three callback lists, timed round-robin:

- `none`: no batch-level callback (`train.checkpoint_every_steps=0`);
- `backups`: rocketctr's `BackupSaver` as `train()` builds it (the default, a backup every
  1000 steps: none falls inside the timed steps, so this is the per-step hook alone);
- `backups, logs copied`: the same with `_supports_tf_logs = False`, i.e. Keras copies every
  step's logs to numpy for the hook (how it ran before);
- `backups + Keras TensorBoard`: with Keras' TensorBoard callback (update_freq 100), as
  `train()` had it: one eager `tf.summary.scalar` per metric at every batch;
- `backups + BatchTensorBoard`: with `rocketctr.training.tensorboard.BatchTensorBoard`
  (update_freq 100), as `train()` has it now: the same summaries, work only on the steps it records.

Prints ms/step and the ratio to `none`; results go to benchmarks/results/batch_hooks.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/common.py; imports rocketctr before TensorFlow)

# isort: split
import tensorflow as tf
import tf_keras

from rocketctr.config.core import Config
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model
from rocketctr.runs.rundir import RunPosition
from rocketctr.training.resume import BackupSaver, DataPosition
from rocketctr.training.tensorboard import BatchTensorBoard

CONFIG = {
    "model": {
        "embedding_dim": 4,
        "booster": {"name": "dcn", "hidden_units": [16], "num_cross_layers": 1},
        "light": {"name": "mlp", "hidden_units": [32]},
    },
    "train": {"batch_size": 256},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="Timed steps per variant.")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()

    config = Config.from_dict(CONFIG)
    schema = load_schema("criteo")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train_file, _ = common.synthetic_files(tmp, 32_768, 1_024)
        data = common.cached_batches(schema, train_file, config.train.batch_size)
        model = build_model(config, schema)
        model.compile()
        position = RunPosition()
        checkpoint = position.checkpoint(model)
        manager = tf.train.CheckpointManager(checkpoint, str(tmp / "checkpoints"), 3)

        def saver(tf_logs: bool) -> BackupSaver:
            hook = BackupSaver(
                position, DataPosition(), checkpoint, manager, True, str(tmp / "backup"), 1000
            )
            hook._supports_tf_logs = tf_logs
            return hook

        keras_board = tf_keras.callbacks.TensorBoard(
            str(tmp / "logs_keras"), update_freq=100, write_graph=False
        )
        callbacks = {
            "none": [],
            "backups": [saver(True)],
            "backups, logs copied": [saver(False)],
            "backups + Keras TensorBoard": [saver(True), keras_board],
            "backups + BatchTensorBoard": [saver(True), BatchTensorBoard(str(tmp / "logs"), 100)],
        }
        iterator = iter(data)

        def runner(hooks):
            def run(steps: int) -> None:
                model.fit(iterator, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=hooks)

            return run

        for hooks in callbacks.values():  # trace and warm up every variant first
            runner(hooks)(20)
        seconds = common.interleaved_timing(
            {name: runner(hooks) for name, hooks in callbacks.items()}, args.steps, args.rounds
        )
    base = seconds["none"]
    rows = [[name, f"{1000 * s:.2f}", f"{s / base:.3f}"] for name, s in seconds.items()]
    text = (
        "# Per-step cost of the mid-epoch backup hook (median of round-robin rounds)\n\n"
        f"emb 4, DCN MLP 16, MLP-32 light, batch 256, {args.steps} steps per variant in "
        f"{args.rounds} rounds, cached synthetic Criteo rows; machine: "
        f"{common.machine_description()}\n\n"
        + common.markdown_table(["callbacks", "ms / step", "vs none"], rows)
    )
    print(text)
    payload = {"args": vars(args), "config": CONFIG, "seconds_per_step": seconds}
    print("Written to", *common.write_results("batch_hooks", payload, text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
