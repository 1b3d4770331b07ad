"""Quality over seeds: light alone, distilled light (logit_mse, kd) and booster; gap closed.

    # Frappe (BARS split), preset "frappe"
    /work/venv/bin/python benchmarks/quality.py --schema frappe --seeds 3 --epochs 10 \
        --train /work/shared/data/frappe/frappe.train.reconstructed.libfm \
        --eval /work/shared/data/frappe/frappe.validation.libfm
    # Criteo sample: first 8,000 rows train, the rest eval (split into temp files)
    /work/venv/bin/python benchmarks/quality.py --schema criteo --split_rows 8000 \
        --train /work/shared/data/criteo/criteo_kaggle_train_head9999.txt
    # Avazu sample: first 7,200 rows train (the header is kept in both parts)
    /work/venv/bin/python benchmarks/quality.py --schema avazu --split_rows 7200 \
        --train /work/shared/data/avazu/avazu_train_head8999.csv

Every run goes through `rocketctr.training.train.train()` (its own temporary model dir; the config
is the preset plus `Config.replace` overrides), so the baselines are trained exactly like
the product trains. Per seed, four runs: `light_only` ("light"), `co_train` with the
`logit_mse` hint and with the `kd` hint ("distilled"), and `booster_only` ("booster").
Metrics are the exact AUC / logloss (/ GAUC with a user column) of `evaluate_towers` on the
eval files, with the weights `train()` keeps (last epoch, or the best validation epoch when
the config's `train.restore_best` is on; the table says which), reported as mean ± sample
std over seeds. Gap closed = (AUC distilled light − AUC light alone) / (AUC booster − AUC light
alone), from the seed means (and per seed, mean ± std).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/common.py; imports rocketctr before TensorFlow)

# isort: split
from rocketctr.config.core import Config, load_config, parse_override
from rocketctr.features.schema import load_schema
from rocketctr.runs.selected import best_epoch, selection_monitor
from rocketctr.training.train import train

# The boosters of the ensemble variants: "PRESET" is the config's own booster.
ENSEMBLE = {
    "dcn": "PRESET",
    "xdeepfm": {
        "name": "xdeepfm",
        "hidden_units": [400, 400, 400],
        "cin_layer_sizes": [64, 64],
        "dropout": 0.2,
        "batch_norm": True,
    },
}

# name -> (config overrides, tower whose metrics count, light-alone baseline of the gap).
# "distilled" is the config as given; the other distilled variants each change one thing.
VARIANTS = {
    "light": ({"distill.mode": "light_only"}, "light", None),
    "distilled": ({"distill.mode": "co_train"}, "light", "light"),
    "distilled_logit_mse": (
        {"distill.mode": "co_train", "distill.methods": {"logit_mse": {"weight": 0.03}}},
        "light",
        "light",
    ),
    "distilled_kd": (
        {"distill.mode": "co_train", "distill.methods": {"kd": {"weight": 1.0}}},
        "light",
        "light",
    ),
    "distilled_no_gradient_block": (
        {"distill.mode": "co_train", "distill.gradient_block": False},
        "light",
        "light",
    ),
    "distilled_light_updates_shared": (
        {"distill.mode": "co_train", "model.light_embedding_gradient_scale": 1.0},
        "light",
        "light",
    ),
    "distilled_light_gradient_0.1": (
        {"distill.mode": "co_train", "model.light_embedding_gradient_scale": 0.1},
        "light",
        "light",
    ),
    "distilled_separate_embeddings": (
        {"distill.mode": "co_train", "model.separate_light_embeddings": True},
        "light",
        "light",
    ),
    "distilled_warmup": (
        {"distill.mode": "co_train", "distill.warmup_steps": 1000, "distill.ramp_steps": 1000},
        "light",
        "light",
    ),
    # The booster stops at its peak and teaches from a frozen copy of its best epoch.
    "distilled_teacher_stop": (
        {"distill.mode": "co_train", "distill.teacher_patience": 2},
        "light",
        "light",
    ),
    # A teacher ensemble (model.boosters): the config's booster ("PRESET") and an xDeepFM,
    # each trained on the labels alone; the mean of their logits teaches.
    "distilled_ensemble": (
        {"distill.mode": "co_train", "distill.teacher_patience": 0, "model.boosters": ENSEMBLE},
        "light",
        "light",
    ),
    # Both together: the ensemble stops at its peak (its mixture's validation metric).
    "distilled_ensemble_teacher_stop": (
        {"distill.mode": "co_train", "distill.teacher_patience": 2, "model.boosters": ENSEMBLE},
        "light",
        "light",
    ),
    # The towers' compute precision (train.mixed_precision), everything else as given.
    **{
        f"distilled_{dtype}": (
            {"distill.mode": "co_train", "train.mixed_precision": dtype},
            "light",
            "light",
        )
        for dtype in ("float32", "bfloat16")
    },
    "booster": ({"distill.mode": "booster_only"}, "booster", None),
    # Two-stage KD: the light net alone, taught by the frozen booster of this seed's
    # "booster" run (trained first; TEACHER is replaced by that run's dir).
    "two_stage": (
        {"distill.mode": "light_only", "distill.teacher_dir": "TEACHER"},
        "light",
        "light",
    ),
    # The other served sizes: logistic regression and FM on the same embeddings.
    **{
        f"{prefix}_{net}": (
            {"distill.mode": mode, "model.light": {"name": net}},
            "light",
            None if prefix == "light" else f"light_{net}",
        )
        for net in ("lr", "fm")
        for prefix, mode in (("light", "light_only"), ("distilled", "co_train"))
    },
}
VARIANT_SETS = {
    "default": ("light", "distilled", "booster"),
    "hints": ("light", "distilled_logit_mse", "distilled_kd", "booster"),
    # Every variant but distilled_kd, which is "distilled" itself under the default hint.
    "ablation": tuple(n for n in VARIANTS if n != "distilled_kd"),
}
METRICS = ("auc", "logloss", "gauc")


def gap_closed(light_auc: float, distilled_auc: float, booster_auc: float) -> float:
    """(distilled − light) / (booster − light); NaN when the booster is no better than light."""
    gap = booster_auc - light_auc
    if gap <= 0:
        return float("nan")
    return (distilled_auc - light_auc) / gap


def split_file(path: str, num_train_rows: int, directory: Path, header: bool) -> tuple[str, str]:
    """Writes the first `num_train_rows` data rows and the rest to two files in `directory`.

    With `header`, the first line is a header and is written at the top of both parts.
    """
    lines = Path(path).read_text().splitlines(keepends=True)
    head, body = (lines[:1], lines[1:]) if header else ([], lines)
    if not 0 < num_train_rows < len(body):
        raise ValueError(f"--split_rows must be in (0, {len(body)}). Received: {num_train_rows}")
    name = Path(path).name
    train_path, eval_path = directory / f"train_{name}", directory / f"eval_{name}"
    train_path.write_text("".join(head + body[:num_train_rows]))
    eval_path.write_text("".join(head + body[num_train_rows:]))
    return str(train_path), str(eval_path)


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v == v]  # drop NaN
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def run_quality(
    config: Config,
    train_files: Sequence[str],
    eval_files: Sequence[str],
    seeds: Sequence[int],
    work_dir: Path,
    variants: dict | None = None,
    verbose: int = 0,
) -> dict:
    """Trains every variant for every seed with `rocketctr.training.train`; aggregates metrics.

    Args:
        config: the base config (mode and hint are overridden per variant, seed per run).
        train_files: training file globs.
        eval_files: evaluation file globs.
        seeds: one run per variant per seed.
        work_dir: parent of the per-run model dirs.
        variants: name -> (overrides, tower scored, light-alone baseline); see `VARIANTS`.
        verbose: Keras verbosity.

    Returns:
        {"runs": [per-run records], "summary": {variant: {metric: [mean, std]}},
         "gap_closed": {variant: {"of_means": x, "per_seed": [mean, std]}}}.
    """
    variants = variants or {k: VARIANTS[k] for k in VARIANT_SETS["default"]}
    taught = [n for n, (o, _, _) in variants.items() if o.get("distill.teacher_dir") == "TEACHER"]
    if taught and "booster" not in variants:
        raise ValueError(f"{taught} need the 'booster' variant: its runs are their teachers.")
    # Teachers train before their students.
    order = [n for n in variants if n not in taught] + taught
    runs = []
    for seed in seeds:
        for name in order:
            overrides, tower, _ = variants[name]
            if name in taught:
                overrides = {**overrides, "distill.teacher_dir": str(work_dir / f"booster_s{seed}")}
            run_config = config.replace({**_ensemble(config, overrides), "train.seed": seed})
            start = time.perf_counter()
            result = train(
                run_config, train_files, eval_files, work_dir / f"{name}_s{seed}", verbose=verbose
            )
            record = {
                "variant": name,
                "seed": seed,
                "seconds": time.perf_counter() - start,
                **{m: result.metrics[tower].get(m, float("nan")) for m in METRICS},
            }
            if "booster" in result.metrics and tower != "booster":
                record["cotrained_booster_auc"] = result.metrics["booster"]["auc"]
            # The booster at its own best validation epoch (the run keeps the light net's).
            best = best_epoch(result.history, "val_booster_auc")
            if best is not None:
                record["booster_best_epoch_auc"] = best["val_booster_auc"]
            # Where it stopped: epochs trained, the kept one, and why it ended.
            record["epochs_run"] = len(result.history)
            record["selected_epoch"] = result.selected_epoch
            record["stop"] = result.history[-1].get("stop") if result.history else None
            # Time to quality: cumulative training seconds and validation AUC per epoch.
            elapsed = list(itertools.accumulate(r["seconds"] for r in result.history))
            record["train_seconds"] = elapsed[-1] if elapsed else 0.0
            record["curve"] = [
                [t, r.get(f"val_{tower}_auc", float("nan"))]
                for t, r in zip(elapsed, result.history, strict=True)
            ]
            model = result.model
            record["serving_mflops"] = (
                getattr(model, tower).flops(*_field_shape(model, tower)) / 1e6
            )
            runs.append(record)
            print(
                f"{name} seed {seed}: AUC {record['auc']:.4f}, {record['seconds']:.0f} s",
                flush=True,
            )
    return summarize(runs, {name: baseline for name, (_, _, baseline) in variants.items()})


def _ensemble(config: Config, overrides: dict) -> dict:
    """`overrides` with a "PRESET" booster of model.boosters made the config's booster, and
    model.booster back at its default (model.boosters replaces it)."""
    boosters = overrides.get("model.boosters")
    if boosters is None:
        return overrides
    own = config.to_dict()["model"]["booster"]
    default = Config().to_dict()["model"]["booster"]
    members = {n: own if b == "PRESET" else b for n, b in boosters.items()}
    return {**overrides, "model.booster": default, "model.boosters": members}


def _field_shape(model, tower: str) -> tuple[int, int]:
    """(categorical fields, embedding dim) the tower reads, for `Tower.flops`."""
    processor = model.light_processor if tower == "light" else model.processor
    return len(processor.categorical), model.rocket_config.model.embedding_dim


# Per-run values summarised alongside METRICS when a run has them.
EXTRAS = ("seconds", "cotrained_booster_auc", "booster_best_epoch_auc", "serving_mflops")


def summarize(runs: list[dict], baselines: dict[str, str | None]) -> dict:
    """Mean ± std per variant and metric; gap closed and lift of each variant with a baseline.

    Args:
        runs: per-run records (variant, seed, metrics).
        baselines: variant name -> the light-alone variant it is compared to, or None.

    Returns:
        {"runs", "summary": {variant: {metric: [mean, std]}}, "gap_closed": {variant:
        {"of_means", "per_seed": [mean, std], "lift": AUC mean difference to the baseline,
        "lift_in_std": lift / pooled std of the two}}}.
    """
    summary = {}
    for name in baselines:
        mine = [r for r in runs if r["variant"] == name]
        summary[name] = {m: _mean_std([r[m] for r in mine]) for m in METRICS}
        for extra in EXTRAS:
            if any(extra in r for r in mine):
                summary[name][extra] = _mean_std([r[extra] for r in mine])
    gaps = {}
    by_seed = {(r["variant"], r["seed"]): r["auc"] for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    for name, base in baselines.items():
        if base not in summary or "booster" not in summary:
            continue
        per_seed = [
            gap_closed(by_seed[(base, s)], by_seed[(name, s)], by_seed[("booster", s)])
            for s in seeds
        ]
        (mean, std), (base_mean, base_std) = summary[name]["auc"], summary[base]["auc"]
        pooled = ((std**2 + base_std**2) / 2) ** 0.5
        gaps[name] = {
            "of_means": gap_closed(base_mean, mean, summary["booster"]["auc"][0]),
            "per_seed": _mean_std(per_seed),
            "lift": mean - base_mean,
            "lift_in_std": (mean - base_mean) / pooled if pooled > 0 else float("nan"),
        }
    result = {"runs": runs, "summary": summary, "gap_closed": gaps}
    speed = time_to_quality(runs)
    if speed:
        result["time_to_quality"] = speed
    return result


def time_to_quality(runs: list[dict], co: str = "distilled", staged: str = "two_stage") -> dict:
    """Co-training vs two-stage KD: wall time until the light net reaches the same AUC.

    Per seed, the target is the lower of the two light nets' best per-epoch validation AUC
    (so both reach it). Co-training time = its epochs until the target; two-stage time = the
    teacher's whole "booster" run + the student's epochs until the target. Also the ratio of
    whole runs. Runs of one process timed one after another (see the README's caveat).

    Returns:
        {"seeds", "target_auc", "ratio_to_target", "ratio_full_runs"} (mean, std pairs), or
        {} without co-trained, two-stage and booster runs with per-epoch curves for a seed.
    """
    by = {(r["variant"], r["seed"]): r for r in runs if "curve" in r}
    seeds = sorted(s for v, s in by if v == staged and (co, s) in by and ("booster", s) in by)
    if not seeds:
        return {}
    targets, to_target, full = [], [], []
    for seed in seeds:
        c, t, b = by[(co, seed)], by[(staged, seed)], by[("booster", seed)]
        target = min(max(auc for _, auc in c["curve"]), max(auc for _, auc in t["curve"]))

        def seconds_to(curve, target=target):
            return next(sec for sec, auc in curve if auc >= target)

        targets.append(target)
        to_target.append(seconds_to(c["curve"]) / (b["train_seconds"] + seconds_to(t["curve"])))
        full.append(c["train_seconds"] / (b["train_seconds"] + t["train_seconds"]))
    return {
        "seeds": seeds,
        "target_auc": _mean_std(targets),
        "ratio_to_target": _mean_std(to_target),
        "ratio_full_runs": _mean_std(full),
    }


def markdown(result: dict, title: str) -> str:
    def pm(pair) -> str:
        mean, std = pair
        return "–" if mean != mean else f"{mean:.4f} ± {std:.4f}"

    booster_mflops = result["summary"].get("booster", {}).get("serving_mflops", [float("nan")])[0]
    rows = []
    for name, values in result["summary"].items():
        gap = result["gap_closed"].get(name)
        mflops = values.get("serving_mflops", [float("nan")])[0]
        rows.append(
            [
                name,
                pm(values["auc"]),
                pm(values["logloss"]),
                pm(values["gauc"]),
                f"{gap['lift']:+.4f} ({gap['lift_in_std']:.1f} std)" if gap else "–",
                f"{gap['of_means']:.0%}" if gap else "–",
                f"{gap['per_seed'][0]:.0%} ± {gap['per_seed'][1]:.0%}" if gap else "–",
                pm(values["cotrained_booster_auc"]) if "cotrained_booster_auc" in values else "–",
                pm(values["booster_best_epoch_auc"]) if "booster_best_epoch_auc" in values else "–",
                "–" if mflops != mflops else f"{mflops:.4f}",
                "–" if booster_mflops != booster_mflops else f"1/{booster_mflops / mflops:.0f}",
                f"{values['seconds'][0]:.0f}",
                _stopping(result["runs"], name),
            ]
        )
    headers = [
        "variant",
        "AUC",
        "logloss",
        "GAUC",
        "AUC lift vs alone (pooled std)",
        "gap closed (of means)",
        "gap closed (per seed)",
        "co-trained booster AUC",
        "booster AUC, its best epoch",
        "serving MFLOP/ex",
        "FLOPs vs booster",
        "s / run",
        "epochs run (kept), per seed",
    ]
    text = f"{title}\n\n{common.markdown_table(headers, rows)}\n"
    speed = result.get("time_to_quality")
    if speed:
        target = common.TARGETS["co_train_vs_two_stage_time"]
        text += (
            f"\nTime to quality, co-training / two-stage KD (seeds {speed['seeds']}): "
            f"{speed['ratio_to_target'][0]:.2f} ± {speed['ratio_to_target'][1]:.2f} until both "
            f"light nets reach validation AUC {speed['target_auc'][0]:.4f} (per-epoch Keras AUC; "
            f"two-stage includes its booster run); whole runs "
            f"{speed['ratio_full_runs'][0]:.2f} ± {speed['ratio_full_runs'][1]:.2f}. "
            f"Target ≤ {target}.\n"
        )
    return text


def _stopping(runs: list[dict], variant: str) -> str:
    """Each seed's epochs trained and the kept epoch, "*" where the last epoch was kept
    without early stopping (likely still improving)."""
    cells = []
    for r in runs:
        if r["variant"] != variant or "epochs_run" not in r:
            continue
        still_improving = r["selected_epoch"] == r["epochs_run"] and r["stop"] != "early_stopping"
        cells.append(f"{r['epochs_run']} ({r['selected_epoch']}{'*' if still_improving else ''})")
    return ", ".join(cells) or "–"


def describe_selection(config: Config) -> str:
    """Which epoch's weights were scored: train() may restore the best validation epoch."""
    if not config.train.restore_best:
        return "Weights of the last epoch"
    monitor = selection_monitor(config)[0].removeprefix("val_")
    return (
        f"Weights of the best epoch by {monitor} on the eval files "
        "(train.restore_best; selected and reported on the same rows, so optimistic for "
        f"every variant alike), early_stopping_patience {config.train.early_stopping_patience}, "
        f"learning rates x{config.train.lr_plateau_factor} after "
        f"{config.train.lr_plateau_patience} epoch(s) without improvement, at most "
        f'{config.train.num_epochs} epochs; "*": the last epoch was kept (still improving)'
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, help="Comma-separated training file globs.")
    parser.add_argument("--eval", default=None, help="Comma-separated eval file globs.")
    parser.add_argument("--split_rows", type=int, default=None, help="Split --train: N rows.")
    parser.add_argument("--schema", required=True, help="Schema name (data_schemas/).")
    parser.add_argument("--config", default=None, help="Preset or YAML; default: --schema.")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="Overrides train.num_epochs.")
    parser.add_argument("--set", action="append", default=[], help="key=value override.")
    parser.add_argument("--out", default=None, help="Results stem; default quality_<schema>.")
    parser.add_argument(
        "--baseline_set",
        action="append",
        default=[],
        help="key=value override for the light-alone variants only (their own tuned settings).",
    )
    parser.add_argument("--first_seed", type=int, default=0, help="Seeds first_seed, ... .")
    parser.add_argument(
        "--merge",
        default=None,
        help="Comma-separated results stems of runs split by seed (--first_seed): "
        "one table over all their runs, written to --out; nothing is trained.",
    )
    parser.add_argument(
        "--variants",
        default="default",
        help=f"A set ({', '.join(VARIANT_SETS)}) or comma-separated names of {list(VARIANTS)}.",
    )
    args = parser.parse_args(argv)
    names = VARIANT_SETS.get(args.variants) or args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    if (args.eval is None) == (args.split_rows is None):
        parser.error("pass exactly one of --eval and --split_rows")
    if args.merge:
        return _merge(args)

    overrides = dict(parse_override(s) for s in args.set)
    overrides["schema"] = args.schema
    if args.epochs is not None:
        overrides["train.num_epochs"] = args.epochs
    config = load_config(args.config or args.schema).replace(overrides)
    with tempfile.TemporaryDirectory(prefix="rocketctr_quality_") as tmp:
        tmp = Path(tmp)
        if args.split_rows is not None:
            header = load_schema(config.schema).header
            train_files, eval_files = split_file(args.train, args.split_rows, tmp, header)
            train_files, eval_files = [train_files], [eval_files]
        else:
            train_files, eval_files = args.train.split(","), args.eval.split(",")
        baseline = dict(parse_override(s) for s in args.baseline_set)
        variants = {
            n: ({**VARIANTS[n][0], **baseline}, *VARIANTS[n][1:])
            if VARIANTS[n][0].get("distill.mode") == "light_only"
            else VARIANTS[n]
            for n in names
        }
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        result = run_quality(config, train_files, eval_files, seeds, tmp / "runs", variants)
    overrides["light alone"] = baseline
    title = _title(args, config, overrides, train_files, eval_files, args.seeds)
    return _publish(args, result, title, config=config.to_dict(), overrides=overrides)


def _publish(args, result: dict, title: str, **payload) -> int:
    """Prints the table and writes it, with the runs, to results/<--out>.{md,json}."""
    text = markdown(result, title)
    print(text)
    payload = {"args": vars(args), **payload, **result}
    paths = common.write_results(args.out or f"quality_{args.schema}", payload, text)
    print("Written to", *paths)
    return 0


def _has_light_alone(payload: dict) -> bool:
    return any(
        VARIANTS[r["variant"]][0].get("distill.mode") == "light_only"
        for r in payload["runs"]
        if r["variant"] in VARIANTS
    )


def mergeable(payloads: list[dict]) -> bool:
    """Whether results files share the config and overrides, and the light-alone runs' own
    settings (--baseline_set) among the files that have light-alone runs."""
    shared = {
        json.dumps(
            [p["config"], {k: v for k, v in p["overrides"].items() if k != "light alone"}],
            sort_keys=True,
        )
        for p in payloads
    }
    baselines = {
        json.dumps(p["overrides"].get("light alone"), sort_keys=True)
        for p in payloads
        if _has_light_alone(p)
    }
    return len(shared) == 1 and len(baselines) <= 1


def _merge(args) -> int:
    """One table over the runs of several results files (the same config, other seeds)."""
    payloads = [
        json.loads((common.RESULTS_DIR / f"{stem}.json").read_text())
        for stem in args.merge.split(",")
    ]
    if not mergeable(payloads):
        raise SystemExit("--merge: the results files were made with different settings")
    runs = [r for p in payloads for r in p["runs"]]
    chosen = VARIANT_SETS.get(args.variants) or args.variants.split(",")
    names = [n for n in dict.fromkeys(r["variant"] for r in runs) if n in chosen]
    result = summarize(runs, {n: VARIANTS[n][2] for n in names})
    first = next((p for p in payloads if _has_light_alone(p)), payloads[0])
    config = Config.from_dict(first["config"])
    num_seeds = len({r["seed"] for r in runs})
    train_files = first["args"]["train"].split(",")
    eval_files = (first["args"]["eval"] or "").split(",")
    title = _title(args, config, first["overrides"], train_files, eval_files, num_seeds)
    return _publish(
        args, result, title, config=first["config"], overrides=first["overrides"], merged=args.merge
    )


def _title(args, config: Config, overrides: dict, train_files, eval_files, num_seeds: int) -> str:
    t = config.train
    return "\n".join(
        [
            f"# Quality: {args.schema}",
            "",
            f"Config {args.config or args.schema!r} + overrides {overrides}; "
            f"{num_seeds} seeds, {t.num_epochs} epochs, batch {t.batch_size}, distillation "
            f"methods {config.distill.methods}. "
            f"Train {train_files if args.split_rows is None else args.train} "
            f"{'' if args.split_rows is None else f'(first {args.split_rows} rows; rest eval)'}"
            f"; eval {eval_files if args.split_rows is None else '(the rest)'}. "
            f'{describe_selection(config)}; mean ± std over seeds. "co-trained booster '
            'AUC": the booster in those kept weights (exact AUC); "booster AUC, its best '
            'epoch": the best per-epoch validation AUC of the booster during training '
            "(Keras AUC, 2000 thresholds), the same measure for the booster alone and "
            "co-trained.",
            f"Targets (issue): booster AUC ≥ {common.TARGETS['frappe_booster_auc']} on Frappe; "
            f"distilled light closes ≥ {common.TARGETS['frappe_gap_closed']:.0%} of the gap.",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
