"""Grid or random search over config keys, scored on validation; results as a table.

    # distillation knobs of the Frappe preset, one seed, every grid point
    /work/venv/bin/python benchmarks/search.py --schema frappe \
        --train /work/shared/data/frappe/frappe.train.reconstructed.libfm \
        --eval /work/shared/data/frappe/frappe.validation.libfm \
        --grid distill.methods.kd.weight=0.3,1,3 \
        --grid train.light_optimizer.learning_rate=0.01,0.03
    # the light net alone: its own learning rate
    ... --mode light_only --grid train.light_optimizer.learning_rate=0.01,0.03,0.1,0.3

KerasTuner is not used: it imports Keras 3 and rejects tf_keras models even with
TF_USE_LEGACY_KERAS=1 (keras-team/keras-tuner#1039, open), and rocketctr trains with
tf_keras. Every point is a config override trained by `rocketctr.training.train.train` (through
`quality.run_quality`), so a point is exactly what `rocketctr train --set ...` would do;
the table is sorted by the scored tower's validation AUC (the light net's unless
`--mode booster_only`). `--samples N` draws N points of the grid at random instead of all.
Tune on validation only: the scores here select settings, they are not test results.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/common.py; imports rocketctr before TensorFlow)
import quality  # noqa: E402

# isort: split
from rocketctr.config.core import load_config, parse_override


def grid_points(grid: list[str], samples: int | None, seed: int) -> list[dict]:
    """Override dicts of the grid's product ("key=v1,v2" each), or `samples` of them at random."""
    axes = []
    for spec in grid:
        key, values = spec.split("=", 1)
        axes.append([parse_override(f"{key}={v}") for v in values.split(",")])
    points = [dict(combo) for combo in itertools.product(*axes)]
    if samples is not None and samples < len(points):
        points = random.Random(seed).sample(points, samples)
    return points


def point_name(overrides: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in overrides.items()) or "(config as is)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, help="Comma-separated training file globs.")
    parser.add_argument("--eval", required=True, help="Comma-separated validation file globs.")
    parser.add_argument("--schema", required=True, help="Schema name (data_schemas/).")
    parser.add_argument("--config", default=None, help="Preset or YAML; default: --schema.")
    parser.add_argument("--mode", default="co_train", help="distill.mode of every point.")
    parser.add_argument("--grid", action="append", required=True, help="key=v1,v2,... axis.")
    parser.add_argument("--set", action="append", default=[], help="key=value for all points.")
    parser.add_argument("--samples", type=int, default=None, help="Random points, not all.")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--search_seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="Results stem; default search_<schema>.")
    args = parser.parse_args(argv)

    base = dict(parse_override(s) for s in args.set)
    base.update({"schema": args.schema, "distill.mode": args.mode})
    config = load_config(args.config or args.schema).replace(base)
    tower = "booster" if args.mode == "booster_only" else "light"
    points = grid_points(args.grid, args.samples, args.search_seed)
    variants = {point_name(p): (p, tower, None) for p in points}
    with tempfile.TemporaryDirectory(prefix="rocketctr_search_") as tmp:
        result = quality.run_quality(
            config,
            args.train.split(","),
            args.eval.split(","),
            range(args.seeds),
            Path(tmp),
            variants,
        )
    summary = result["summary"]
    ranked = sorted(summary, key=lambda n: -summary[n]["auc"][0])
    rows = [
        [
            name,
            f"{summary[name]['auc'][0]:.4f} ± {summary[name]['auc'][1]:.4f}",
            f"{summary[name]['logloss'][0]:.4f}",
            *(
                f"{summary[name][extra][0]:.4f}" if extra in summary[name] else "–"
                for extra in ("cotrained_booster_auc", "booster_best_epoch_auc")
            ),
            f"{summary[name]['seconds'][0]:.0f}",
        ]
        for name in ranked
    ]
    text = "\n".join(
        [
            f"# Search: {args.schema}, {args.mode}",
            "",
            f"Config {args.config or args.schema!r} + {base}; {len(points)} points, "
            f"{args.seeds} seed(s) each, {config.train.num_epochs} epochs; {tower} net "
            f"validation AUC of the epoch `train()` keeps ({quality.describe_selection(config)}). "
            f"Validation files: {args.eval}.",
            "",
            common.markdown_table(
                [
                    "overrides",
                    f"{tower} AUC",
                    "logloss",
                    "co-trained booster AUC",
                    "booster AUC, its best epoch",
                    "s / run",
                ],  # fmt: skip
                rows,
            ),
            "",
        ]
    )
    print(text)
    payload = {"args": vars(args), "config": config.to_dict(), **result}
    stem = args.out or f"search_{args.schema}_{args.mode}"
    print("Written to", *common.write_results(stem, payload, text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
