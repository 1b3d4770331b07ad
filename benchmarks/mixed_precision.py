"""bf16 mixed precision (`train.mixed_precision`) vs fp32, measured side by side in one run.

    python benchmarks/mixed_precision.py --steps 24 --rounds 4
    python benchmarks/mixed_precision.py --preset default --out mixed_precision_default
    python benchmarks/mixed_precision.py --preset frappe --out mixed_precision_frappe \
        --train /work/shared/data/frappe/frappe.train.reconstructed.libfm \
        --eval /work/shared/data/frappe/frappe.validation.libfm

Without `--preset`: the reference configuration (batch 4096, emb 16, DCN 3 crosses ∥ MLP
1024-512-256, MLP-64 light net). With it: that preset's towers, batch size and optimizers,
on `--train`/`--eval` files of its schema (synthetic Criteo-shaped rows by default). The
batches are cached in memory; booster_only and co_train, fp32 and bf16 timed round-robin;
examples/s and the bf16/fp32 ratio, plus both towers' AUC on held-out rows after the same
steps. Results go to benchmarks/results/<--out>.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/common.py; imports rocketctr before TensorFlow)

# isort: split
from rocketctr.config import load_config
from rocketctr.data import make_dataset
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model
from rocketctr.training.train import evaluate_towers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=24, help="Timed steps per variant.")
    parser.add_argument("--rounds", type=int, default=4, help="Round-robin rounds.")
    parser.add_argument("--preset", help="A config preset (default: the reference).")
    parser.add_argument("--batch_size", type=int, help="Default: the preset's, or 4096.")
    parser.add_argument("--train", help="Training rows of the preset's schema.")
    parser.add_argument("--eval", help="Held-out rows of the preset's schema.")
    parser.add_argument("--train_rows", type=int, default=131_072)
    parser.add_argument("--eval_rows", type=int, default=32_768)
    parser.add_argument("--out", default="mixed_precision")
    args = parser.parse_args()

    def config_for(mode: str, precision: str):
        if args.preset:
            config = load_config(args.preset)
            overrides = {"distill.mode": mode}
            if args.batch_size:
                overrides["train.batch_size"] = args.batch_size
            config = config.replace(overrides)
        else:
            config = common.reference_config(mode, batch_size=args.batch_size or 4096)
        return config.replace(
            {"train.mixed_precision": "bfloat16" if precision == "bf16" else "float32"}
        )

    described = config_for("co_train", "fp32")
    args.batch_size = described.train.batch_size
    schema = load_schema(described.schema)
    with tempfile.TemporaryDirectory() as tmp:
        if args.train:
            train_file, eval_file = Path(args.train), Path(args.eval or args.train)
        else:
            train_file, eval_file = common.synthetic_files(
                Path(tmp), args.train_rows, args.eval_rows
            )
        batches = common.cached_batches(schema, train_file, args.batch_size)
        eval_batches = make_dataset(schema, str(eval_file), args.batch_size)
        models, runners = {}, {}
        for mode in ("booster_only", "co_train"):
            for precision in ("fp32", "bf16"):
                config = config_for(mode, precision)
                model = build_model(config, schema)
                step = model.make_train_function()
                iterator = iter(batches)
                step(iterator)  # trace and warm up

                def run(n, step=step, iterator=iterator):
                    for _ in range(n):
                        step(iterator)

                models[(mode, precision)] = model
                runners[(mode, precision)] = run
        seconds = common.interleaved_timing(runners, args.steps, args.rounds)
        rows, records = [], []
        for (mode, precision), per_step in seconds.items():
            metrics = evaluate_towers(models[(mode, precision)], eval_batches, None)
            rate = args.batch_size / per_step
            fp32_rate = args.batch_size / seconds[(mode, "fp32")]
            records.append(
                {
                    "mode": mode,
                    "precision": precision,
                    "examples_per_s": rate,
                    "ratio_to_fp32": rate / fp32_rate,
                    **{f"{t}_auc": m["auc"] for t, m in metrics.items()},
                }
            )
            rows.append(
                [
                    mode,
                    precision,
                    f"{rate:,.0f}",
                    f"{rate / fp32_rate:.2f}x",
                    *(
                        f"{metrics[t]['auc']:.4f}" if t in metrics else "–"
                        for t in ("booster", "light")
                    ),
                ]
            )
    machine = common.machine_description()
    table = common.markdown_table(
        ["mode", "precision", "examples/s", "vs fp32", "booster AUC", "light AUC"], rows
    )
    configuration = (
        f"preset {args.preset!r} on {train_file.name}"
        if args.preset
        else "reference DCN/MLP-64 configuration"
    )
    markdown = (
        "# bf16 mixed precision vs fp32 (train.mixed_precision)\n\n"
        f"Batch {args.batch_size}, {configuration}, {args.steps} timed steps "
        f"per variant in {args.rounds} interleaved rounds, AUC after {args.steps + 1} steps. "
        f"Machine: {machine}.\n\n{table}\n"
    )
    print(markdown)
    common.write_results(args.out, {"machine": machine, "records": records}, markdown)


if __name__ == "__main__":
    main()
