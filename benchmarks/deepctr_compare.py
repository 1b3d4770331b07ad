"""rocketctr booster_only vs DeepCTR's DCN: same data, batch, embedding dim, depth, MLP.

    /work/venv/bin/python benchmarks/deepctr_compare.py \
        --deepctr_python /work/venv-deepctr/bin/python

DeepCTR is never a dependency of this project. It runs in a separate virtualenv, created once:

    python3 -m venv /work/venv-deepctr
    /work/venv-deepctr/bin/pip install deepctr==0.9.4 tensorflow==2.21.0 tf-keras==2.21.0 \
        pandas scikit-learn

This script (in the project venv) writes/reuses the synthetic Criteo-shaped TSV files of
`train_throughput.py`, starts itself with `--worker` under the DeepCTR venv's Python
(TF_USE_LEGACY_KERAS=1; DeepCTR's update check at import is disabled by making its
`requests.get` fail before import, so no network call), and then times the two side by
side: round-robin, a few steps of rocketctr, then a few steps of DeepCTR (the worker runs
the steps on command over a pipe and reports its own wall time), median per round. Both
then evaluate exact AUC on the same held-out rows.

Same configuration: batch 4096, embedding_dim 16, 3 full-rank cross layers
(`cross_parameterization="matrix"`, the Cross of DCN-v2 that rocketctr's `dcn` uses)
in parallel with an MLP 1024-512-256, no dropout/BN, all L2 regularisers 0. Differences
that remain, by design of each library: DeepCTR adds its linear logit (one weight per id),
uses one Adam (lr 1e-3) for everything, per-field tables sized to the ids seen, and ids
encoded in pandas before training (not timed); rocketctr hashes raw strings in-graph on
every step (timed), one shared hashed table with Adagrad (lr 0.05), Adam for dense layers.
Both sides step with Keras' own `make_train_function()` on in-memory batches. rocketctr is
timed in several lever settings (`ROCKET_VARIANTS`: the defaults, lazy Adam tables with XLA
towers, fp32 towers) in the same rounds, each against the same DeepCTR steps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NUM_DENSE, NUM_CATEGORICAL = 13, 26
COLUMNS = ["label"] + [f"I{i}" for i in range(1, 14)] + [f"C{i}" for i in range(1, 27)]


DEEPCTR = "DeepCTR 0.9.4 DCN"
# rocketctr variants timed against DeepCTR: name -> (embedding optimizer, XLA towers,
# train.mixed_precision). The defaults are what ships: Adagrad tables, precision auto (bf16
# where the CPU computes it natively, which the results name).
ROCKET_VARIANTS = {
    "rocketctr defaults (Adagrad tables, precision auto)": ("adagrad", False, "auto"),
    "rocketctr fp32 towers": ("adagrad", False, "float32"),
    "rocketctr lazy_adam tables + XLA towers": ("lazy_adam", True, "auto"),
}
DEFAULTS = "rocketctr defaults (Adagrad tables, precision auto)"
BASELINE_VARIANT = "rocketctr defaults, --baseline_features front end"


# ------------------------------------------------------------------ DeepCTR side (worker)
def worker(train_path: str, eval_path: str, batch_size: int) -> None:
    """Runs in the DeepCTR venv: reads commands from stdin, answers one JSON line each."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import numpy as np
    import pandas as pd
    import requests

    def no_network(*args, **kwargs):
        raise ConnectionError("network disabled by deepctr_compare.py")

    requests.get = no_network  # DeepCTR's import-time version check
    import tensorflow as tf
    from deepctr.feature_column import DenseFeat, SparseFeat
    from deepctr.models import DCN

    train = pd.read_csv(train_path, sep="\t", header=None, names=COLUMNS)
    evaluation = pd.read_csv(eval_path, sep="\t", header=None, names=COLUMNS)
    both = pd.concat([train, evaluation], ignore_index=True)
    dense = [f"I{i}" for i in range(1, NUM_DENSE + 1)]
    sparse = [f"C{i}" for i in range(1, NUM_CATEGORICAL + 1)]
    for c in dense:  # the same transform as rocketctr's log1p of clipped counts
        both[c] = np.log1p(np.clip(both[c].fillna(0).to_numpy(np.float32), 0, None))
    vocab = {}
    for c in sparse:
        codes, uniques = pd.factorize(both[c].fillna(""))
        both[c] = codes + 1
        vocab[c] = len(uniques) + 1
    columns = [SparseFeat(c, vocabulary_size=vocab[c], embedding_dim=16) for c in sparse] + [
        DenseFeat(c, 1) for c in dense
    ]
    model = DCN(
        columns,
        columns,
        cross_num=3,
        cross_parameterization="matrix",
        dnn_hidden_units=(1024, 512, 256),
        l2_reg_linear=0.0,
        l2_reg_embedding=0.0,
        l2_reg_cross=0.0,
        l2_reg_dnn=0.0,
        dnn_dropout=0.0,
        dnn_use_bn=False,
        task="binary",
    )
    model.compile("adam", "binary_crossentropy")
    names = sparse + dense

    def inputs(frame):
        return {c: frame[c].to_numpy() for c in names}, frame["label"].to_numpy(np.float32)

    n_train = len(train)
    x, y = inputs(both.iloc[:n_train])
    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .batch(batch_size, drop_remainder=True)
        .cache()
        .repeat()
        .prefetch(2)
    )
    train_function = model.make_train_function()
    iterator = iter(dataset)
    print(json.dumps({"ready": True, "tensorflow": tf.__version__}), flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[0] == "train":
            start = time.perf_counter()
            for _ in range(int(command[1])):
                logs = train_function(iterator)
            float(logs["loss"])
            print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)
        elif command[0] == "eval":
            ex, ey = inputs(both.iloc[n_train:])
            probs = model.predict(ex, batch_size=batch_size, verbose=0).reshape(-1)
            ranks = pd.Series(probs.astype(np.float64)).rank().to_numpy()
            pos = ey > 0
            n_pos, n_neg = int(pos.sum()), int((~pos).sum())
            auc = (ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
            print(json.dumps({"auc": float(auc)}), flush=True)
        else:
            return


# ------------------------------------------------------------------ rocketctr side (driver)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deepctr_python", default="/work/venv-deepctr/bin/python")
    parser.add_argument("--steps", type=int, default=16, help="Timed steps per library.")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup_steps", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=4096)
    parser.add_argument("--train_rows", type=int, default=32 * 4096)
    parser.add_argument("--eval_rows", type=int, default=8 * 4096)
    parser.add_argument("--data_dir", default=str(Path(tempfile.gettempdir()) / "rocketctr_bench"))
    parser.add_argument(
        "--baseline_features",
        default=None,
        help="A features.py file (e.g. an earlier revision's): the defaults variant is also "
        "timed with its FeatureProcessor, in the same rounds.",
    )
    parser.add_argument("--out", default="deepctr_compare", help="Results file stem.")
    parser.add_argument("--worker", nargs=2, metavar=("TRAIN", "EVAL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker, args.batch_size)
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common  # imports rocketctr before TensorFlow

    from rocketctr.data import make_dataset
    from rocketctr.features.schema import load_schema
    from rocketctr.model import precision
    from rocketctr.model.cotrain import build_model
    from rocketctr.training.train import evaluate_towers

    schema = load_schema("criteo")
    train_path, eval_path = common.synthetic_files(
        Path(args.data_dir), args.train_rows, args.eval_rows
    )
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen(
        [
            args.deepctr_python,
            __file__,
            "--batch_size",
            str(args.batch_size),
            "--worker",
            str(train_path),
            str(eval_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )

    def ask(command: str) -> dict:
        proc.stdin.write(command + "\n")
        proc.stdin.flush()
        return _read_json(proc)

    deepctr_info = _read_json(proc)
    models, train_functions = {}, {}
    variants = dict(ROCKET_VARIANTS)
    if args.baseline_features:
        variants[BASELINE_VARIANT] = ROCKET_VARIANTS[DEFAULTS]
    for name, (optimizer, jit, mixed) in variants.items():
        config = common.reference_config("booster_only", optimizer, jit, args.batch_size)
        models[name] = build_model(config.replace({"train.mixed_precision": mixed}), schema)
        if name == BASELINE_VARIANT:
            baseline = common.load_feature_processor(args.baseline_features)
            common.with_feature_processor(models[name], baseline)
        train_functions[name] = models[name].make_train_function()
    iterator = iter(common.cached_batches(schema, train_path, args.batch_size))

    def rocket(name: str, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            logs = train_functions[name](iterator)
        float(logs["loss"])
        return time.perf_counter() - start

    for name in models:
        rocket(name, args.warmup_steps)
    ask(f"train {args.warmup_steps}")
    per_round = max(1, args.steps // args.rounds)
    times = {name: [] for name in [*models, DEEPCTR]}
    for _ in range(args.rounds):
        for name in models:
            times[name].append(rocket(name, per_round) / per_round)
        times[DEEPCTR].append(ask(f"train {per_round}")["seconds"] / per_round)
    aucs = {DEEPCTR: ask("eval")["auc"]}
    proc.stdin.write("quit\n")
    proc.stdin.close()
    proc.wait(timeout=60)
    eval_ds = make_dataset(schema, str(eval_path), args.batch_size)
    for name, model in models.items():
        aucs[name] = evaluate_towers(model, eval_ds, None)["booster"]["auc"]

    rate = {k: args.batch_size / sorted(v)[len(v) // 2] for k, v in times.items()}
    ratios = {name: rate[name] / rate[DEEPCTR] for name in models}
    steps_done = args.warmup_steps + args.rounds * per_round
    machine = common.machine_description()
    rows = [[name, f"{rate[name]:,.0f}", f"{aucs[name]:.4f}"] for name in times]
    text = "\n".join(
        [
            "# rocketctr booster_only vs DeepCTR DCN (same data and shape)",
            "",
            f"Synthetic Criteo-shaped rows, batch {args.batch_size}, emb 16, 3 full-rank "
            f"crosses ∥ MLP 1024-512-256, L2 off. {args.steps} timed steps each in "
            f"{args.rounds} interleaved rounds; AUC on {args.eval_rows:,} held-out rows after "
            f"{steps_done} steps. Machine: nproc {machine['nproc']}, {machine['cpu']}; "
            f"TF {machine['tensorflow']} (DeepCTR venv TF {deepctr_info.get('tensorflow')}). "
            + precision.describe("auto"),
            "",
            common.markdown_table(["library / levers", "examples/s", "AUC"], rows),
            "",
            *[
                f"- {name} / DeepCTR examples/s = {ratio:.2f}x at AUC "
                f"{aucs[name] - aucs[DEEPCTR]:+.4f} vs DeepCTR "
                f"(target ≥ {common.TARGETS['vs_deepctr']}x at equal or better AUC)"
                for name, ratio in ratios.items()
            ],
            *(
                [
                    f"- {DEFAULTS} / the same with --baseline_features: examples/s = "
                    f"{rate[DEFAULTS] / rate[BASELINE_VARIANT]:.2f}x"
                ]
                if BASELINE_VARIANT in rate
                else []
            ),
            "",
        ]
    )
    print(text)
    payload = {"args": vars(args), "machine": machine, "examples_per_s": rate}
    payload.update({"ratios": ratios, "auc": aucs})
    print("Written to", *common.write_results(args.out, payload, text))
    return 0


def _read_json(proc: subprocess.Popen) -> dict:
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"The DeepCTR worker exited (code {proc.poll()}).")
        if line.startswith("{"):
            return json.loads(line)


if __name__ == "__main__":
    sys.exit(main())
