"""Training throughput: light only, booster only, co-training and two-stage KD, side by side.

    /work/venv/bin/python benchmarks/train_throughput.py                  # full lever grid
    /work/venv/bin/python benchmarks/train_throughput.py --steps 40 --jit_compile off \
        --embedding_optimizer adagrad --modes booster_only,co_train

Reference configuration (the issue's): synthetic Criteo-shaped rows (13 dense, 26
categorical; `rocketctr.data.synthetic`), batch 4096, embedding_dim 16, DCN booster with 3
full-rank crosses ∥ MLP 1024-512-256, MLP-64 light net. The rows are written to TSV once,
read through `make_dataset` and **cached in memory** (`Dataset.cache().repeat()`), so the
numbers are the training step alone, not parsing (see `input_pipeline.py` for that).

Every variant (mode × embedding optimizer × XLA) is built first, warmed up (tracing and
XLA compilation excluded), then timed round-robin, a few steps of each in turn, so that the
other engineer's jobs hit all variants alike; the per-step time is the median over rounds.
A step is one call of Keras' own `make_train_function()` (what `fit` calls), so there is no
per-example Python. After timing, each model's towers are evaluated (exact AUC) on held-out
synthetic rows: the levers are compared at the AUC they reach after the same steps.

Two-stage KD (`kd_stage`): a booster trained first (`booster_only`), then a light net with
its own embedding table learning from labels plus a `kd` hint (T = 1) from the frozen
booster: the same `CoTrainModel` with `separate_light_embeddings`, booster weights and
shared table copied from the `booster_only` model of the same lever, and the booster and
shared table left out of both optimizers (no gradient is computed for them). Its step runs
the booster forward, the light forward and backward. Two-stage total time for N steps of
each stage = t(booster_only) + t(kd_stage); Rocket co-training does both in N co_train steps.

XLA (`--jit_compile on`) is the product's `train.jit_compile`: the towers' forward/backward
are XLA clusters; hashing, the embedding gather and the optimizer updates are not (XLA has
no strings, and the gather must stay outside to keep sparse table gradients).

FLOPs per example come from `Tower.flops` (forward); training ≈ 3× forward (forward +
two backward products), except the frozen booster in `kd_stage` (1×). Utilisation is the
achieved GFLOP/s over the best large square `tf.matmul` GFLOP/s measured in this run
(fp32 and bf16, before and after the timing; the best of the two).
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
from rocketctr.data import make_dataset
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import CoTrainModel, build_model
from rocketctr.training.train import evaluate_towers

MODES = ("light_only", "booster_only", "co_train", "kd_stage", "co_train_3_lights")
# co_train_3_lights: the reference light net and two larger ones, one launch (model.lights)
THREE_LIGHTS = {
    "mlp64": {"name": "mlp", "hidden_units": [64]},
    "mlp128": {"name": "mlp", "hidden_units": [128, 64]},
    "mlp256": {"name": "mlp", "hidden_units": [256, 128]},
}
BASELINE_SUFFIX = " (baseline features)"  # a variant timed with --baseline_features


class FrozenBoosterModel(CoTrainModel):
    """Second stage of two-stage KD: only the light net and its own embedding table train."""

    def embedding_variables(self) -> list[tf.Variable]:
        return list(self.light_embedding.trainable_variables)

    def dense_variables(self) -> list[tf.Variable]:
        return list(self.light.trainable_variables)


def _variant_config(mode: str, optimizer: str, jit: bool, batch_size: int) -> Config:
    if mode == "kd_stage":
        kd = {"kd": {"weight": 0.1}}
        config = common.reference_config("co_train", optimizer, jit, batch_size, methods=kd)
        return config.replace({"model.separate_light_embeddings": True})
    if mode == "co_train_3_lights":
        config = common.reference_config("co_train", optimizer, jit, batch_size)
        default_light = Config().to_dict()["model"]["light"]  # `lights` replaces `light`
        return config.replace({"model.light": default_light, "model.lights": THREE_LIGHTS})
    return common.reference_config(mode, optimizer, jit, batch_size)


def _forward_flops(model: CoTrainModel, num_fields: int, dim: int) -> dict[str, int]:
    out = {}
    if model.has_booster:
        out["booster"] = model.booster.flops(num_fields, dim)
    for name, net in model.light_nets.items():
        out[name] = net.tower.flops(num_fields, dim)
    return out


def _runner(model: CoTrainModel, dataset: tf.data.Dataset):
    train_function = model.make_train_function()
    iterator = iter(dataset)

    def run(steps: int) -> None:
        logs = None
        for _ in range(steps):
            logs = train_function(iterator)
        float(logs["loss"])  # wait for the last step

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=24, help="Timed steps per variant.")
    parser.add_argument("--rounds", type=int, default=4, help="Round-robin rounds.")
    parser.add_argument("--warmup_steps", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=4096)
    parser.add_argument("--jit_compile", default="both", choices=["off", "on", "both"])
    parser.add_argument(
        "--embedding_optimizer", default="adagrad,adam,lazy_adam", help="Comma-separated."
    )
    parser.add_argument("--modes", default=",".join(MODES), help=f"Subset of {MODES}.")
    parser.add_argument("--train_rows", type=int, default=32 * 4096, help="Cached rows.")
    parser.add_argument("--eval_rows", type=int, default=8 * 4096)
    parser.add_argument("--data_dir", default=str(Path(tempfile.gettempdir()) / "rocketctr_bench"))
    parser.add_argument("--matmul_size", type=int, default=2048)
    parser.add_argument("--out", default="train_throughput", help="Results file stem.")
    parser.add_argument(
        "--baseline_features",
        default=None,
        help="A features.py file (e.g. an earlier revision's): light_only and co_train are "
        "also timed with its FeatureProcessor, in the same rounds.",
    )
    args = parser.parse_args(argv)

    optimizers = args.embedding_optimizer.split(",")
    jits = {"off": [False], "on": [True], "both": [False, True]}[args.jit_compile]
    modes = args.modes.split(",")
    if "kd_stage" in modes and "booster_only" not in modes:
        parser.error("kd_stage needs booster_only (its teacher) in --modes")
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"Unknown modes {unknown}; known: {MODES}")

    schema = load_schema("criteo")
    train_path, eval_path = common.synthetic_files(
        Path(args.data_dir), args.train_rows, args.eval_rows
    )
    train_ds = common.cached_batches(schema, train_path, args.batch_size)
    eval_ds = make_dataset(schema, str(eval_path), args.batch_size).cache()
    peaks_before = common.matmul_peaks(args.matmul_size)
    print(f"matmul peaks (GFLOP/s): {peaks_before}", flush=True)

    baseline = (
        common.load_feature_processor(args.baseline_features) if args.baseline_features else None
    )
    variants, runners = {}, {}
    for jit in jits:
        for optimizer in optimizers:
            for mode in modes:
                key = (mode, optimizer, jit)
                tf_keras.utils.set_random_seed(0)
                config = _variant_config(mode, optimizer, jit, args.batch_size)
                if mode == "kd_stage":
                    model = build_model(config, schema, FrozenBoosterModel)
                    # The teacher is the booster_only model of the same lever (weights do
                    # not change the cost of a step; quality is measured in quality.py).
                    teacher = variants[("booster_only", optimizer, jit)]
                    model.booster.set_weights(teacher.booster.get_weights())
                    model.embedding.set_weights(teacher.embedding.get_weights())
                else:
                    model = build_model(config, schema)
                variants[key] = model
                runners[key] = _runner(model, train_ds)
                print(f"warming up {key}", flush=True)
                runners[key](args.warmup_steps)
                if baseline is not None and mode in ("light_only", "co_train"):
                    tf_keras.utils.set_random_seed(0)
                    model = common.with_feature_processor(build_model(config, schema), baseline)
                    key = (f"{mode}{BASELINE_SUFFIX}", optimizer, jit)
                    variants[key] = model
                    runners[key] = _runner(model, train_ds)
                    print(f"warming up {key}", flush=True)
                    runners[key](args.warmup_steps)
    seconds_per_step = common.interleaved_timing(runners, args.steps, args.rounds)
    peaks_after = common.matmul_peaks(args.matmul_size)
    peaks = {k: max(peaks_before[k], peaks_after[k]) for k in peaks_before}

    num_fields = len(schema.categorical)
    dim = 16
    rows, records = [], []
    for key, model in variants.items():
        mode, optimizer, jit = key
        fwd = _forward_flops(model, num_fields, dim)
        if mode == "kd_stage":
            train_flops = fwd["booster"] + 3 * fwd["light"]
        else:
            train_flops = 3 * sum(fwd.values())
        examples_per_s = args.batch_size / seconds_per_step[key]
        gflops = train_flops * examples_per_s / 1e9
        metrics = evaluate_towers(model, eval_ds, None)
        record = {
            "mode": mode,
            "embedding_optimizer": optimizer,
            "jit_compile": jit,
            "seconds_per_step": seconds_per_step[key],
            "examples_per_s": examples_per_s,
            "forward_flops_per_example": fwd,
            "train_flops_per_example": train_flops,
            "gflops_per_s": gflops,
            "utilisation_fp32": gflops / peaks["fp32"],
            "utilisation_bf16": gflops / peaks["bf16"],
            "booster_auc": metrics.get("booster", {}).get("auc"),
            "light_auc": metrics.get("light", metrics.get("mlp64", {})).get("auc"),
            # Steps each model has taken when evaluated (warm-up + timed).
            "trained_steps": args.warmup_steps + args.rounds * max(1, args.steps // args.rounds),
        }
        records.append(record)
        rows.append(
            [
                mode,
                optimizer,
                "on" if jit else "off",
                f"{examples_per_s:,.0f}",
                f"{sum(fwd.values()) / 1e6:.3f}",
                f"{gflops:.1f}",
                f"{record['utilisation_fp32']:.0%}",
                f"{record['utilisation_bf16']:.0%}",
                _fmt(record["booster_auc"]),
                _fmt(record["light_auc"]),
            ]
        )

    summary = _summary(records, optimizers, jits)
    machine = common.machine_description()
    markdown = "\n".join(
        [
            "# Training throughput (synthetic Criteo shape, in-memory batches)",
            "",
            f"Batch {args.batch_size}, embedding_dim 16, DCN 3 crosses ∥ MLP 1024-512-256 "
            f"booster, MLP-64 light. {args.steps} timed steps per variant in {args.rounds} "
            f"interleaved rounds after {args.warmup_steps} warm-up steps; median per round. "
            f"AUC on {args.eval_rows:,} held-out synthetic rows after "
            f"{records[0]['trained_steps']} steps.",
            f"Machine: nproc {machine['nproc']}, {machine['cpu']}, TF {machine['tensorflow']}. "
            f"tf.matmul {args.matmul_size}² peaks: fp32 {peaks['fp32']:.1f} GFLOP/s, "
            f"bf16 {peaks['bf16']:.1f} GFLOP/s.",
            "",
            common.markdown_table(
                [
                    "mode",
                    "emb opt",
                    "XLA",
                    "examples/s",
                    "fwd MFLOP/ex",
                    "train GFLOP/s",
                    "util fp32",
                    "util bf16",
                    "booster AUC",
                    "light AUC",
                ],
                rows,
            ),
            "",
            "## Ratios (same run) and targets",
            "",
            summary,
            "",
        ]
    )
    print(markdown)
    payload = {"args": vars(args), "machine": machine, "matmul_peaks": peaks, "runs": records}
    paths = common.write_results(args.out, payload, markdown)
    print("Written to", *paths)
    return 0


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _summary(records: list[dict], optimizers: list[str], jits: list[bool]) -> str:
    by_key = {(r["mode"], r["embedding_optimizer"], r["jit_compile"]): r for r in records}
    lines = []
    t = common.TARGETS
    for jit in jits:
        for opt in optimizers:
            tag = f"emb {opt}, XLA {'on' if jit else 'off'}"
            co, booster = by_key.get(("co_train", opt, jit)), by_key.get(("booster_only", opt, jit))
            kd = by_key.get(("kd_stage", opt, jit))
            if co and booster:
                ratio = co["examples_per_s"] / booster["examples_per_s"]
                lines.append(
                    f"- {tag}: co_train / booster_only examples/s = {ratio:.2f}x "
                    f"(target ≥ {t['co_train_vs_booster']}x)"
                )
            if co and booster and kd:
                two_stage = booster["seconds_per_step"] + kd["seconds_per_step"]
                ratio = co["seconds_per_step"] / two_stage
                lines.append(
                    f"- {tag}: co_train time / two-stage KD time (same steps per stage) = "
                    f"{ratio:.2f} (target ≤ {t['co_train_vs_two_stage_time']})"
                )
            if booster:
                lines.append(
                    f"- {tag}: booster_only at {booster['utilisation_fp32']:.0%} of fp32 matmul "
                    f"peak (target ≥ {t['booster_fp32_utilisation']:.0%})"
                )
    for jit in jits:
        for opt in optimizers:
            co, three = (
                by_key.get(("co_train", opt, jit)),
                by_key.get(("co_train_3_lights", opt, jit)),
            )
            if co and three:
                ratio = three["seconds_per_step"] / co["seconds_per_step"]
                lines.append(
                    f"- emb {opt}, XLA {'on' if jit else 'off'}: co_train with 3 light nets / "
                    f"with 1, seconds per step = {ratio:.2f}x (target ≤ 1.3x)"
                )
    for mode in ("light_only", "co_train"):
        for jit in jits:
            for opt in optimizers:
                new, old = (
                    by_key.get((mode, opt, jit)),
                    by_key.get((mode + BASELINE_SUFFIX, opt, jit)),
                )
                if new and old:
                    lines.append(
                        f"- {mode}, emb {opt}, XLA {'on' if jit else 'off'}: this FeatureProcessor "
                        f"/ --baseline_features examples/s = "
                        f"{new['examples_per_s'] / old['examples_per_s']:.2f}x"
                    )
    for mode in ("light_only", "co_train", "booster_only"):
        for jit in jits:
            base = by_key.get((mode, "adagrad", jit))
            for opt in optimizers:
                other = by_key.get((mode, opt, jit))
                if base and other and opt != "adagrad":
                    lines.append(
                        f"- {mode}, XLA {'on' if jit else 'off'}: adagrad / {opt} examples/s = "
                        f"{base['examples_per_s'] / other['examples_per_s']:.2f}x"
                    )
        for opt in optimizers:
            off, on = by_key.get((mode, opt, False)), by_key.get((mode, opt, True))
            if off and on:
                lines.append(
                    f"- {mode}, emb {opt}: XLA on / off examples/s = "
                    f"{on['examples_per_s'] / off['examples_per_s']:.2f}x"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
