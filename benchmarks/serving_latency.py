"""Serving latency of the exported light net against the booster it was distilled from.

Builds a model from a config (or restores a trained run), exports the light net with the
product path (`rocketctr.serving.export_light`) and, for this comparison only, the booster
path with the same signature machinery (`rocketctr.serving.export_tower`; the product never
exports the booster). Both SavedModels are reloaded with `tf.saved_model.load` and their
`serving_default` is timed at several batch sizes in two modes, side by side in one run:

- **call**: one in-process Python call of the signature per request, median wall time over
  many calls after a warm-up, light and booster alternating call by call so that machine
  noise hits both alike. This is the signature's graph plus the Python call overhead (about
  one eager function dispatch and one conversion per input).
- **loop**: the signature's graph run many times inside one `tf.function` while loop
  (`parallel_iterations=1`, each iteration's result summed into the loop state, so nothing
  is skipped or overlapped). This is what a C++ server such as TF Serving pays for the
  graph itself, without Python; its per-request RPC, tensor decoding and batching layers are
  not included. Loops of the two towers alternate, median per-iteration time over rounds.

Then a **breakdown** of each tower's scoring path into its three stages, each timed alone
in the loop mode from precomputed inputs of the previous stage (the in-memory model's
layers, the very ops the signatures call):
    features: raw columns -> row ids [B, F] and dense values [B, D] (`FeatureProcessor`)
    lookup:   row ids -> embeddings [B, F, d] (one gather in the shared table)
    tower:    embeddings, dense -> logits [B]

    python benchmarks/serving_latency.py                      # preset "default", fresh weights
    python benchmarks/serving_latency.py --model_dir runs/demo  # a trained run's checkpoint

Weights do not change the cost of these towers, so fresh weights time the same graph.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_feature_processor, machine_description  # noqa: E402

# isort: split
import tensorflow as tf

from rocketctr import serving
from rocketctr.config.core import load_config
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model
from rocketctr.serving.latency import (
    graph_loop,
    raw_rows,
    signature_inputs,
    time_calls,
    time_loops,
)
from rocketctr.serving.metadata import saved_model_bytes
from rocketctr.serving.serving_module import light_table

RESULTS = Path(__file__).resolve().parent / "results" / "serving_latency.md"
TOWERS = ("light", "booster")
STAGES = ("features", "lookup", "tower")


def stage_fns(model, tower: str) -> dict[str, tuple[Callable, Callable]]:
    """{stage: (fn, inputs from raw features -> that stage's args)} of one tower's path."""
    if tower == "light":  # the export's lookup: the light rows, ids remapped
        processor, net = model.light_processor, model.light
        names = processor.slot_names
        light_rows = light_table(model, "float32")

        def table(ids):
            return light_rows.lookup(ids, names)
    else:
        processor, table, net = model.processor, model.embedding, model.booster

    def tower_args(ids, dense):  # what the tower reads, as the model assembles it
        embeddings, kwargs = model.tower_inputs(net, table, processor, ids)
        return embeddings, dense, kwargs

    def tower(embeddings, dense, kwargs):
        return net(embeddings, dense, training=False, **kwargs).logits

    return {
        "features": (processor, lambda raw: (raw,)),
        # The rows (pooled per field) and first-order weights the tower reads; LR reads
        # first-order weights only.
        "lookup": (tower_args, lambda raw: processor(raw)),
        "tower": (tower, lambda raw: tower_args(*processor(raw))),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="default", help="Preset name or YAML path.")
    parser.add_argument("--model_dir", default=None, help="Restore this run's checkpoint.")
    parser.add_argument("--batch_sizes", default="1,100,1000")
    parser.add_argument("--reps", type=int, default=200, help="Timed calls per batch size.")
    parser.add_argument("--warmup", type=int, default=20, help="Untimed calls first.")
    parser.add_argument("--loop_seconds", type=float, default=0.2, help="Per timed loop.")
    parser.add_argument("--rounds", type=int, default=5, help="Timed loops per measurement.")
    parser.add_argument("--out", default=str(RESULTS), help="Markdown results file.")
    parser.add_argument(
        "--light_dtypes",
        default="bfloat16,int8",
        help="Light exports with these embedding dtypes are timed beside the float32 one "
        "('' for none).",
    )
    parser.add_argument(
        "--baseline_features",
        default=None,
        help="A features.py file (e.g. an earlier revision's): its FeatureProcessor's "
        "features stage is timed too, in the same rounds.",
    )
    args = parser.parse_args(argv)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    quantized = [d for d in args.light_dtypes.split(",") if d]

    if args.model_dir:
        model, _ = serving.restore_model(args.model_dir)
        source = f"checkpoint of {args.model_dir}"
    else:
        config = load_config(args.config)
        model = build_model(config, load_schema(config.schema))
        source = f"config {args.config!r}, untrained weights"
    if not (model.has_light and model.has_booster):
        print("The model needs both towers (distill.mode co_train).", file=sys.stderr)
        return 1
    mc = model.rocket_config.model
    baseline = load_feature_processor(args.baseline_features) if args.baseline_features else None

    all_dtypes = {
        c: tf.string if model.schema.is_string_column(c) else tf.float32
        for c in model.schema.input_columns
    }
    rows = raw_rows(all_dtypes, max(batch_sizes))
    calls, loops, stages = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {
            "light": serving.export_light(model, Path(tmp) / "light"),
            "booster": serving.export_tower(model, Path(tmp) / "booster", tower="booster"),
        }
        for dtype in quantized:
            dirs[f"light {dtype}"] = serving.export_tower(
                model, Path(tmp) / dtype, tower="light", embedding_dtype=dtype
            )
        timed = list(dirs)
        sizes = {t: saved_model_bytes(d) for t, d in dirs.items()}
        loaded = {t: tf.saved_model.load(str(d)) for t, d in dirs.items()}  # owns the variables
        signatures = {t: loaded[t].signatures["serving_default"] for t in timed}
        for batch in batch_sizes:
            inputs = {t: signature_inputs(signatures[t], rows, batch) for t in timed}
            calls[batch] = time_calls(signatures, inputs, args.reps, args.warmup)

            def call_signature(features, signature):
                return signature(**features)

            loops[batch] = time_loops(
                {
                    t: (graph_loop(lambda f, s=signatures[t]: call_signature(f, s)), (inputs[t],))
                    for t in timed
                },
                args.loop_seconds, args.rounds,
            )  # fmt: skip
            stage_loops = {}
            for t in TOWERS:
                raw = inputs[t]
                for stage, (fn, make_args) in stage_fns(model, t).items():
                    stage_loops[(t, stage)] = (graph_loop(fn), make_args(raw))
                if baseline is not None:
                    ours = model.light_processor if t == "light" else model.processor
                    names = [f.name for f in ours.categorical + ours.dense]
                    stage_loops[(t, "baseline")] = (
                        graph_loop(baseline(model.schema, names)),
                        (raw,),
                    )
            stages[batch] = time_loops(stage_loops, args.loop_seconds, args.rounds)
            print(f"batch {batch}: call {calls[batch]}, loop {loops[batch]}", flush=True)

    params = serving.parameter_counts(model)
    flops = serving.tower_flops(model)
    machine = machine_description()
    lines = [
        "# Serving latency: light vs booster",
        "",
        f"Model: {source}; schema {model.schema.name}, embedding_dim {mc.embedding_dim}.",
        f"- light: `{mc.light.name}` {list(mc.light.hidden_units)}, "
        f"{flops['light']:,} FLOPs/example, {params['light']['tower']:,} tower parameters, "
        f"{len(model.light_processor.input_columns)} serving inputs",
        f"- booster: `{mc.booster.name}` {list(mc.booster.hidden_units)}, "
        f"{flops['booster']:,} FLOPs/example, {params['booster']['tower']:,} tower parameters",
        f"- embedding rows the light export holds: {params['light']['embedding']:,} parameters "
        f"(the booster's table: {params['booster']['embedding']:,})",
        "",
        f"Machine: nproc {machine['nproc']}, CPU {machine['cpu']}, GPUs {machine['gpus']}, "
        f"Python {machine['python']}, TensorFlow {machine['tensorflow']}.",
        "",
        "## Whole signature: `serving_default` of the reloaded SavedModels",
        "",
        f"- call: in-process Python call; median of {args.reps} calls after {args.warmup} "
        "warm-up calls, light and booster alternating.",
        "- loop: the signature's graph run inside one `tf.function` while loop "
        f"(sequential iterations); median ms per iteration over {args.rounds} loops of "
        f"~{args.loop_seconds} s each, light and booster alternating.",
        "",
        "| batch | light call ms | booster call ms | booster / light (call) "
        "| light loop ms | booster loop ms | booster / light (loop) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for batch in batch_sizes:
        c, g = calls[batch], loops[batch]
        lines.append(
            f"| {batch} | {c['light']:.3f} | {c['booster']:.3f} | "
            f"{c['booster'] / c['light']:.2f}x | {g['light']:.3f} | {g['booster']:.3f} | "
            f"{g['booster'] / g['light']:.2f}x |"
        )
    if quantized:
        lines += [
            "",
            "## Light exports by embedding dtype (`export.embedding_dtype`)",
            "",
            "The same rounds as above; size is saved_model.pb + variables/ on disk.",
            "",
            "| batch | light export | size MiB | call ms | loop ms | loop / float32 loop |",
            "|---:|---|---:|---:|---:|---:|",
        ]
        for batch in batch_sizes:
            c, g = calls[batch], loops[batch]
            for t in ["light"] + [f"light {d}" for d in quantized]:
                name = "float32" if t == "light" else t.split()[1]
                lines.append(
                    f"| {batch} | {name} | {sizes[t] / 2**20:.1f} | {c[t]:.3f} | {g[t]:.3f} | "
                    f"{g[t] / g['light']:.2f}x |"
                )
    lines += [
        "",
        "## Breakdown: each stage alone, loop mode (ms per batch)",
        "",
        "Each stage from precomputed outputs of the previous one; `sum` is the three stages "
        "added, `whole` the signature's loop time above (it also pays the sigmoid and the "
        "signature's output structure).",
        "",
        "| batch | tower | features | lookup | tower | sum | whole | whole / tower |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for batch in batch_sizes:
        for t in TOWERS:
            s = [stages[batch][(t, stage)] for stage in STAGES]
            whole = loops[batch][t]
            lines.append(
                f"| {batch} | {t} | {s[0]:.3f} | {s[1]:.3f} | {s[2]:.3f} | {sum(s):.3f} | "
                f"{whole:.3f} | {whole / s[2]:.1f}x |"
            )
    if baseline is not None:
        lines += [
            "",
            f"## Features stage: this FeatureProcessor vs `{args.baseline_features}`",
            "",
            "Loop mode, the same rounds as the breakdown above.",
            "",
            "| batch | tower | baseline features ms | features ms | baseline / this |",
            "|---:|---|---:|---:|---:|",
        ]
        for batch in batch_sizes:
            for t in TOWERS:
                old, new = stages[batch][(t, "baseline")], stages[batch][(t, "features")]
                lines.append(f"| {batch} | {t} | {old:.3f} | {new:.3f} | {old / new:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    payload = {
        "size_bytes": sizes,
        "call_ms": calls,
        "loop_ms": loops,
        "stage_ms": {b: {f"{t}/{s}": v for (t, s), v in st.items()} for b, st in stages.items()},
    }
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2, sort_keys=True))
    print(f"Written to {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
