"""The frontier at convergence: each light net alone and distilled, over seeds, in one launch each.

    # Frappe (train -> validation), the preset as shipped
    python benchmarks/frontier_quality.py --config frappe --schema frappe --seeds 3 \
        --train /work/shared/data/frappe/frappe.train.reconstructed.libfm \
        --eval /work/shared/data/frappe/frappe.validation.libfm --out frontier_frappe
    # MovieLens 100K (GAUC per user)
    python benchmarks/frontier_quality.py --config frappe --schema movielens --seeds 3 \
        --train /work/shared/data/movielens100k/train.csv \
        --eval /work/shared/data/movielens100k/valid.csv --out frontier_movielens

Per seed, three launches through `rocketctr.training.train.train` (the product's path): `light_only`
(every light net of `model.lights` alone, "alone"), `co_train` (all of them distilled from the
co-trained booster, "distilled"), and `booster_only`. Each light net is scored at its own
best validation epoch on the eval files (exact AUC, logloss, GAUC). For each light net: mean
± std over seeds alone and distilled, the lift in pooled std, the share of the booster's gap
closed (benchmarks/quality.py `summarize`), its FLOPs ratio to the booster, and its serving
latency ratio to the booster at batch 100 (loop mode, `rocketctr frontier` on seed 0's
distilled run, all nets timed side by side). With `--single_launches`, seed 0 also trains
each light net in its own co_train launch (as before `model.lights`), and the wall time of
those launches is set against the one frontier launch.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402,F401  (imports rocketctr before TensorFlow)

# isort: split
from quality import summarize  # noqa: E402

from rocketctr.config.core import Config, load_config, parse_override
from rocketctr.scoring.frontier import measure_frontier
from rocketctr.training.train import train

RESULTS = Path(__file__).resolve().parent / "results"
METRICS = ("auc", "logloss", "gauc")


MODES = ("light_only", "co_train", "booster_only")


def run(
    config: Config, train_files, eval_files, seeds, work: Path, modes=MODES
) -> tuple[list[dict], dict]:
    """Trains `modes` for each seed: (per-net run records, {(mode, seed): wall seconds})."""
    names = list(config.model.light_nets())
    runs, seconds = [], {}
    for seed in seeds:
        for mode, prefix in (("light_only", "alone"), ("co_train", "distilled"),
                             ("booster_only", None)):  # fmt: skip
            if mode not in modes:
                continue
            start = time.perf_counter()
            model_dir = work / f"{mode}_s{seed}"
            cfg = config.replace({"distill.mode": mode, "train.seed": seed})
            result = train(cfg, train_files, eval_files, model_dir, verbose=0)
            seconds[(mode, seed)] = time.perf_counter() - start
            towers = ["booster"] if prefix is None else names
            if mode == "co_train":  # the co-trained booster, as the run keeps it
                towers = [*towers, "booster"]
            for tower in towers:
                variant = f"{prefix}_{tower}" if prefix else "booster"
                metrics = result.metrics[tower]
                runs.append({"variant": variant, "seed": seed,
                             **{m: metrics.get(m, float("nan")) for m in METRICS}})  # fmt: skip
            aucs = ", ".join(f"{t} {result.metrics[t]['auc']:.4f}" for t in towers)
            print(f"{mode} seed {seed}: {seconds[(mode, seed)]:.0f} s, {aucs}", flush=True)
    return runs, seconds


def single_launches(config: Config, train_files, eval_files, seed: int, work: Path) -> dict:
    """{light net: wall seconds of its own co_train launch} (one light net per launch, as
    before `model.lights`)."""
    seconds = {}
    for name, light in config.model.light_nets().items():
        tower = {k: v for k, v in light.__dict__.items()
                 if k not in ("optimizer", "embedding_gradient_scale")}  # fmt: skip
        overrides = {"model.lights": {}, "model.light": tower, "distill.mode": "co_train",
                     "train.seed": seed, "export.light": None}  # fmt: skip
        if light.optimizer:
            overrides["train.light_optimizer"] = light.optimizer.__dict__
        if light.embedding_gradient_scale is not None:
            overrides["model.light_embedding_gradient_scale"] = light.embedding_gradient_scale
        start = time.perf_counter()
        train(config.replace(overrides), train_files, eval_files, work / f"single_{name}",
              verbose=0)  # fmt: skip
        seconds[name] = time.perf_counter() - start
        print(f"single launch {name}: {seconds[name]:.0f} s", flush=True)
    return seconds


def wall_time(config: Config, train_files, eval_files, seed: int, work: Path) -> dict:
    """One frontier launch (co_train, every light net) against the single-light launches it
    replaces, the same seed, one after the other."""
    start = time.perf_counter()
    train(config.replace({"distill.mode": "co_train", "train.seed": seed}), train_files,
          eval_files, work / "frontier", verbose=0)  # fmt: skip
    frontier = time.perf_counter() - start
    print(f"frontier launch: {frontier:.0f} s", flush=True)
    return {
        "launch_seconds": {f"co_train_s{seed}": frontier},
        "single_launch_seconds": single_launches(config, train_files, eval_files, seed, work),
    }


def _wall_time_line(result: dict) -> str:
    launches, single = result["launch_seconds"], result["single_launch_seconds"]
    frontier_s = launches[next(k for k in launches if k.startswith("co_train_"))]
    each = ", ".join(f"{k} {v:.0f}" for k, v in single.items())
    total = sum(single.values())
    return (
        f"One frontier launch {frontier_s:.0f} s against {len(single)} single-light launches "
        f"{total:.0f} s ({each}): {frontier_s / total:.2f}x."
    )


def _baselines(config: Config) -> dict[str, str | None]:
    """{variant: the variant its lift is measured against}: each light net's distilled
    variant against its alone one."""
    baselines: dict[str, str | None] = {"booster": None, "distilled_booster": None}
    for name in config.model.light_nets():
        baselines.update({f"alone_{name}": None, f"distilled_{name}": f"alone_{name}"})
    return baselines


def markdown(result: dict, config: Config, title: str, command: str) -> str:
    def pm(pair) -> str:
        return "–" if pair[0] != pair[0] else f"{pair[0]:.4f} ± {pair[1]:.4f}"

    s, gaps = result["summary"], result["gap_closed"]
    nets = {r["name"]: r for r in result["frontier"]["nets"]}
    lines = [f"# {title}", "", f"    {command}", "",
             "| light net | alone AUC | distilled AUC | lift (pooled std) | gap closed | "
             "alone logloss | distilled logloss | distilled GAUC | FLOPs vs booster | "
             "latency vs booster, batch 100 (loop) |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in config.model.light_nets():
        alone, dist, gap = s[f"alone_{name}"], s[f"distilled_{name}"], gaps[f"distilled_{name}"]
        net = nets[name]
        lines.append(
            f"| {name} | {pm(alone['auc'])} | {pm(dist['auc'])} | {gap['lift']:+.4f} "
            f"({gap['lift_in_std']:.1f}) | {gap['of_means']:.0%} | {pm(alone['logloss'])} | "
            f"{pm(dist['logloss'])} | {pm(dist['gauc'])} | 1/{net['flops_ratio']:.0f} | "
            f"1/{net['latency_ratio']:.2f} |"
        )
    b = s["booster"]
    lines += [f"| booster alone | – | {pm(b['auc'])} | – | – | – | {pm(b['logloss'])} | "
              f"{pm(b['gauc'])} | 1 | 1 |"]  # fmt: skip
    kept = s.get("distilled_booster")
    if kept and kept["auc"][0] == kept["auc"][0]:  # not NaN: the runs recorded it
        lines.append(f"| booster co-trained (kept) | – | {pm(kept['auc'])} | – | – | – | "
                     f"{pm(kept['logloss'])} | {pm(kept['gauc'])} | 1 | – |")  # fmt: skip
    lines.append("")
    launches = result["launch_seconds"]
    lines.append("Launch wall times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in launches.items()))
    if "single_launch_seconds" in result:
        lines.append(_wall_time_line(result))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="frappe")
    parser.add_argument("--schema", default=None, help="Override the config's schema.")
    parser.add_argument("--train", required=True)
    parser.add_argument("--eval", required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first_seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--single_launches", action="store_true")
    parser.add_argument("--modes", default=None,
                        help="Comma-separated launches to train per seed (default: all three); "
                        "with --merge, the variants of the others come from the merged "
                        "results.")  # fmt: skip
    parser.add_argument("--wall_time", action="store_true",
                        help="Only time seed --first_seed's frontier launch against its "
                        "single-light launches (no alone or booster runs).")  # fmt: skip
    parser.add_argument("--out", required=True, help="Results name under benchmarks/results/.")
    parser.add_argument("--merge", default="",
                        help="Comma-separated result names of this config: without --modes, "
                        "summarised together without training (the first one's frontier and "
                        "launch times kept); with it, they give the variants it does not "
                        "train.")  # fmt: skip
    args = parser.parse_args(argv)
    config = load_config(args.config).replace(dict(parse_override(s) for s in args.set))
    if args.schema:
        config = config.replace({"schema": args.schema})
    if len(config.model.light_nets()) < 2:
        parser.error("the config names one light net: give model.lights.")
    parts = [json.loads((RESULTS / f"{n}.json").read_text()) for n in args.merge.split(",") if n]
    modes = args.modes.split(",") if args.modes else list(MODES)
    if args.wall_time:
        with tempfile.TemporaryDirectory() as tmp:
            result = wall_time(config, [args.train], [args.eval], args.first_seed, Path(tmp))
    elif parts and not args.modes:  # summarise the merged results alone
        result = summarize([r for part in parts for r in part["runs"]], _baselines(config))
        result["frontier"], result["launch_seconds"] = parts[0]["frontier"], {}
        for part in parts:
            result["launch_seconds"].update(part["launch_seconds"])
    else:
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            runs, seconds = run(config, [args.train], [args.eval], seeds, work, modes)
            trained = {r["variant"] for r in runs}
            runs += [r for part in parts for r in part["runs"] if r["variant"] not in trained]
            result = summarize(runs, _baselines(config))
            result["launch_seconds"] = {f"{m}_s{s}": v for (m, s), v in seconds.items()}
            if "co_train" in modes:
                result["frontier"] = measure_frontier(
                    work / f"co_train_s{seeds[0]}", [args.eval], batch_sizes=(1, 100, 1000),
                    batch=100,
                )  # fmt: skip
            else:
                result["frontier"] = parts[0]["frontier"]
            if args.single_launches:
                result["single_launch_seconds"] = single_launches(
                    config, [args.train], [args.eval], seeds[0], work
                )
    command = "python " + " ".join(["benchmarks/frontier_quality.py", *(argv or sys.argv[1:])])
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=1, default=str))
    title = f"Frontier quality: {args.out}"
    if args.wall_time:
        text = f"# {title}\n\n    {command}\n\n{_wall_time_line(result)}\n"
    else:
        text = markdown(result, config, title, command)
    (RESULTS / f"{args.out}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
