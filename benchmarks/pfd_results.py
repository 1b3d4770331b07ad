"""Privileged Features Distillation on synthetic data: does the booster's view of a
privileged feature make the served light net better?

PFD: light net alone (MLP over the servable features) vs the PFD light net (co-trained
with a DCN booster that also reads the privileged `dwell_time`; convex hint form, λ = 0
during warm-up) vs that booster.
PFD+MD: two-tower light net alone vs the distilled two-tower vs its DNN booster (all
features, privileged ones included).

Every run is `rocketctr.training.train.train()` with the presets `pfd` / `pfd_md` (plus
`Config.replace` overrides for mode and seed) on one draw of
`rocketctr.data.synthetic.generate_pfd`, in a temporary model dir; metrics are exact AUC /
logloss on the eval file. Mean ± sample std over training seeds. Writes
benchmarks/results/pfd.{md,json}.

    python benchmarks/pfd_results.py                     # the full table (a few minutes)
    python benchmarks/pfd_results.py --seeds 1 --train_rows 20000 --num_epochs 1   # smoke
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/common.py; imports rocketctr before TensorFlow)

from rocketctr.config.core import Config, TowerConfig, load_config, parse_override  # noqa: E402
from rocketctr.data.synthetic import ensure_synthetic_pfd  # noqa: E402
from rocketctr.training import train  # noqa: E402

EXPERIMENTS = {
    "pfd": {
        "title": "PFD: MLP-32 light net; DCN booster that also reads the privileged dwell_time",
        "preset": "pfd",
        "rows": [
            ("light alone (light_only)", "light_only", "light"),
            ("PFD light (co_train, convex form)", "co_train", "light"),
            ("booster, with privileged (co_train)", "co_train", "booster"),
        ],
    },
    "pfd_md": {
        "title": "PFD+MD: two-tower light net; DNN booster that also reads dwell_time",
        "preset": "pfd_md",
        "rows": [
            ("two-tower alone (light_only)", "light_only", "light"),
            ("distilled two-tower (co_train, convex form)", "co_train", "light"),
            ("DNN booster, with privileged (co_train)", "co_train", "booster"),
        ],
    },
}


def run_config(preset: str, mode: str, seed: int, args) -> Config:
    """The preset with this run's mode, seed and the command line's overrides."""
    # Final-epoch weights: the eval file is the test set here, so no model selection on it.
    overrides = {"distill.mode": mode, "train.seed": seed, "train.restore_best": False}
    for key, value in (
        ("train.num_epochs", args.num_epochs),
        ("distill.methods.kd.weight", args.hint_weight),
        ("distill.warmup_steps", args.warmup_steps),
    ):  # fmt: skip
        if value is not None:
            overrides[key] = value
    overrides.update(parse_override(text) for text in args.set)
    return load_config(preset).replace(overrides)


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def _tower(spec: dict) -> str:
    """A tower config without the fields it leaves at their defaults."""
    defaults = dataclasses.asdict(TowerConfig(name=spec["name"]))
    shown = {"name"} | ({"output_dim"} if spec["name"] == "two_tower" else set())
    return ", ".join(f"{k}={v}" for k, v in spec.items() if k in shown or v != _plain(defaults[k]))


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _verdict(runs: dict[str, list[dict]]) -> str:
    """Distilled light minus light alone, against 2 standard deviations of either row."""
    parts = []
    for metric, better in (("auc", 1.0), ("logloss", -1.0)):
        alone = [m["light"][metric] for m in runs["light_only"]]
        distilled = [m["light"][metric] for m in runs["co_train"]]
        gain = better * (statistics.mean(distilled) - statistics.mean(alone))
        spread = max(statistics.stdev(alone), statistics.stdev(distilled)) if len(alone) > 1 else 0
        parts.append(
            f"{metric} {'+' if gain >= 0 else '−'}{abs(gain):.4f} (2 std = {2 * spread:.4f}: "
            f"{'beyond' if gain > 2 * spread else 'NOT beyond'})"
        )
    return "Distilled light vs light alone (positive = better): " + "; ".join(parts) + "."


def render(payload: dict) -> str:
    """The markdown report of a results payload (also: `--render_only` from the JSON)."""
    args, configs, results = payload["args"], payload["configs"], payload["results"]
    lines = [
        "# Privileged Features Distillation on synthetic data",
        "",
        f"`python benchmarks/pfd_results.py` — one draw of `generate_pfd(task={args['task']!r})` "
        f"(data seed {args['data_seed']}): {args['train_rows']:,} train / "
        f"{args['eval_rows']:,} eval rows. Mean ± sample std over {args['seeds']} training "
        "seeds (initialisation and shuffling), exact metrics on the eval rows, final-epoch "
        "weights (no model selection on the eval rows). Each table's runs share the preset "
        f"and overrides. Wall time {payload['wall_seconds']:.0f} s on {payload['machine']}.",
        "",
    ]
    for experiment, r in results.items():
        d, m = configs[experiment]["distill"], configs[experiment]["model"]
        lines += [
            f"## {r['title']}",
            "",
            f"Preset `{EXPERIMENTS[experiment]['preset']}`: booster `{_tower(m['booster'])}`, "
            f"light `{_tower(m['light'])}`, embedding dim {m['embedding_dim']}; methods "
            f"`{d['methods']}`, hint_form `{d['hint_form']}`, at full weight after "
            f"{d['warmup_steps']} warm-up steps; {configs[experiment]['train']['num_epochs']} "
            f"epoch(s), batch {configs[experiment]['train']['batch_size']}.",
            "",
            common.markdown_table(
                ["model", "AUC", "logloss", "GAUC (per user)"][: len(r["table"][0])], r["table"]
            ),
            "",
            _verdict(r["runs"]),
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    # One pass over a large log, as PFD trains in production: the booster's soft targets
    # for a row come from a booster that has not yet trained on that row.
    parser.add_argument("--train_rows", type=int, default=500_000)
    parser.add_argument("--eval_rows", type=int, default=50_000)
    parser.add_argument("--num_epochs", type=int, default=None, help="default: the preset's")
    parser.add_argument(
        "--hint_weight", type=float, default=None, help="the kd weight; default: the preset's"
    )
    parser.add_argument("--warmup_steps", type=int, default=None, help="default: the preset's")
    parser.add_argument("--set", action="append", default=[], help="key=value for every run.")
    parser.add_argument("--data_seed", type=int, default=0, help="one data draw for all seeds")
    parser.add_argument("--task", default="ctr", choices=["ctr", "cvr"])
    parser.add_argument("--experiments", default="pfd,pfd_md")
    parser.add_argument("--data_dir", default="/tmp/rocketctr_pfd_data")
    parser.add_argument("--name", default="pfd", help="results/<name>.md and .json")
    parser.add_argument("--render_only", action="store_true", help="rewrite <name>.md from JSON")
    args = parser.parse_args()
    if args.render_only:
        payload = json.loads((common.RESULTS_DIR / f"{args.name}.json").read_text())
        (common.RESULTS_DIR / f"{args.name}.md").write_text(render(payload))
        return

    results: dict[str, dict] = {}
    configs: dict[str, dict] = {}
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for experiment in args.experiments.split(","):
            spec = EXPERIMENTS[experiment]
            runs: dict[str, list[dict]] = {}
            train_file, eval_file = ensure_synthetic_pfd(
                Path(args.data_dir), args.train_rows, args.eval_rows, seed=args.data_seed,
                task=args.task,
            )  # fmt: skip
            for seed in range(args.seeds):
                for mode in sorted({mode for _, mode, _ in spec["rows"]}):
                    config = run_config(spec["preset"], mode, seed, args)
                    configs[experiment] = config.replace({"distill.mode": "co_train"}).to_dict()
                    model_dir = Path(tmp) / f"{experiment}_{mode}_s{seed}"
                    t0 = time.time()
                    result = train.train(
                        config, [str(train_file)], [str(eval_file)], model_dir, verbose=0
                    )
                    runs.setdefault(mode, []).append(result.metrics)
                    print(f"{experiment} {mode} seed {seed}: {result.metrics} "
                          f"({time.time() - t0:.0f} s)", flush=True)  # fmt: skip
            table = []
            for label, mode, tower in spec["rows"]:
                aucs = [m[tower]["auc"] for m in runs[mode]]
                loglosses = [m[tower]["logloss"] for m in runs[mode]]
                gaucs = [m[tower]["gauc"] for m in runs[mode]]
                table.append([label, mean_std(aucs), mean_std(loglosses), mean_std(gaucs)])
            results[experiment] = {"title": spec["title"], "runs": runs, "table": table}

    payload = {
        "args": vars(args),
        "configs": configs,
        "results": results,
        "wall_seconds": time.time() - started,
        "machine": common.machine_description(),
    }
    markdown = render(payload)
    print(markdown)
    json_path, md_path = common.write_results(args.name, payload, markdown)
    print(f"Wrote {md_path} and {json_path}")


if __name__ == "__main__":
    main()
