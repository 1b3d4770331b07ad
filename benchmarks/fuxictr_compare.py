"""FuxiCTR's DCN / DCN-v2 (published Frappe_x1 configs) vs the `frappe` preset's booster.

    /work/main/.venv/bin/python benchmarks/fuxictr_compare.py \
        --fuxictr_python /work/venv-fuxictr/bin/python \
        --model_zoo /work/fuxictr-src/model_zoo --seeds 0,1,2 --work_dir /tmp/fuxictr_compare

FuxiCTR is never a dependency of this project. It runs in a separate virtualenv, created once
(torch 2.13.0 is the CPU wheel; keep it, FuxiCTR does not pin torch):

    python3 -m venv /work/venv-fuxictr
    /work/venv-fuxictr/bin/pip install torch==2.13.0
    /work/venv-fuxictr/bin/pip install fuxictr==2.3.10

The PyPI wheel holds FuxiCTR's library (feature processing, data loaders, BaseModel with its
training loop) but not the models: those live in the repository's `model_zoo/`. Take them
from the commit that is release 2.3.10 (reczoo/FuxiCTR 0245987fdc1d43c36164ea496a02324885a8557a):

    git clone https://github.com/reczoo/FuxiCTR /tmp/FuxiCTR
    git -C /tmp/FuxiCTR archive 0245987fdc1d43c36164ea496a02324885a8557a \
        model_zoo/DCN/DCN_torch/src model_zoo/DCNv2/src | tar -x -C /work/fuxictr-src

Data: exactly our Frappe files, `frappe.train.reconstructed.libfm` (train) and
`frappe.validation.libfm` (early stopping and the reported metrics), for both libraries.

Peer side (`--worker`, under the FuxiCTR venv's Python, `torch.set_num_threads(1)`): the
libfm rows are written as a CSV under --work_dir (never the repo; the data may not be
redistributed), `label,user,item,...,city`, one categorical column per field whose value
is the libfm index as a string, label -1 -> 0. FuxiCTR's own `FeatureProcessor` and
`build_dataset` then build its vocabulary from the train file with min_categr_count 1 (as
published), i.e. per field the ids seen in train plus `__PAD__` and `__OOV__`: a validation
id never seen in train maps to its field's OOV row. (rocketctr's `frappe` schema instead
gives every libfm index its own row by offset, `id_offset`/`num_ids`; an id unseen in train
keeps its initial row.) The model is the model_zoo class with the BARS settings below,
trained by FuxiCTR's `BaseModel.fit` (its early stopping, LR decay, gradient clipping at
norm 10, best-epoch checkpoint reload); seed via FuxiCTR's `seed_everything`. AUC
(`sklearn.metrics.roc_auc_score`) and logloss (`sklearn.metrics.log_loss`) are computed
here on all 57,722 validation rows from the reloaded best weights.

Published configs (BARS, reczoo/BARS 5b5e61fe2e4ddf676dd12984365da0ae775fb863, the logged
params of the reported expid in `ranking/ctr/<model>/<model>_frappe_x1/README.md`, run
with FuxiCTR v1.1.0 on the original Frappe_x1 split):
  - DCN (expid DCN_frappe_x1_013_efa58c31): embedding_dim 10, dnn_hidden_units
    [400, 400, 400], relu, crossing_layers 3, net_dropout 0.2, batch_norm True,
    embedding_regularizer 0.05, net_regularizer 0, adam lr 1e-3, batch_size 4096,
    epochs 100, patience 2, monitor AUC (max), min_categr_count 1. Published: validation
    AUC 0.984547 (seed 2021), test AUC 0.983418 ± 0.000312 over 5 runs.
  - DCN-v2 (expid DCNv2_frappe_x1_007_c207b717): the same but model_structure parallel,
    parallel_dnn_hidden_units [400, 400, 400], num_cross_layers 4, full-rank crosses
    (use_low_rank_mixture False), net_dropout 0.4. Published: validation AUC 0.984840,
    test AUC 0.983824 ± 0.000435 over 5 runs.
In FuxiCTR 2.3.10 `crossing_layers` is called `num_cross_layers` and `patience`
`early_stop_patience`; reduce-LR-on-plateau (x0.1 on every epoch without improvement,
floor 1e-6) is on by default, as in v1.1.0. As in v1.1.0, `embedding_regularizer` is an L2
on the *whole* embedding tables every step ((0.05 / 2) * ||E||^2, BaseModel's
`regularization_loss`), not on the rows a batch reads.

rocketctr side (this venv): the `frappe` preset, `distill.mode=booster_only`, through
`quality.run_quality` (so `rocketctr.training.train.train`, as every quality benchmark), with the
overrides in `ROCKET_OVERRIDES`: early stopping with patience 2 on the validation booster
AUC, LR x0.1 after 1 epoch without improvement, a 100-epoch cap, i.e. the same protocol as
FuxiCTR's; the best epoch's weights are kept (train.restore_best) and scored with exact AUC.

Diagnostic (`--models fuxictr_dcn_emb_l2_0`): the published DCN with embedding_regularizer 0,
everything else unchanged, to measure how much of FuxiCTR's AUC its whole-table embedding L2
carries.

Runs go one at a time; each run's record is kept in --work_dir/records/ and reused by a
later call (so seeds can be added run by run); the table is over every record there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

FIELDS = (
    "user", "item", "daytime", "weekday", "isweekend", "homework", "cost", "weather",
    "country", "city",
)  # fmt: skip
DATA_DIR = Path("/work/shared/data/frappe")
TRAIN = DATA_DIR / "frappe.train.reconstructed.libfm"
VALID = DATA_DIR / "frappe.validation.libfm"
FUXICTR_COMMIT = "0245987fdc1d43c36164ea496a02324885a8557a"
BARS_COMMIT = "5b5e61fe2e4ddf676dd12984365da0ae775fb863"

# BARS Frappe_x1 settings (see the docstring), in FuxiCTR 2.3.10 argument names.
FUXI_COMMON = {
    "embedding_dim": 10, "embedding_regularizer": 0.05, "net_regularizer": 0,
    "batch_norm": True, "dnn_activations": "relu", "optimizer": "adam",
    "learning_rate": 1.0e-3, "batch_size": 4096, "epochs": 100, "early_stop_patience": 2,
    "reduce_lr_on_plateau": True, "monitor": "AUC", "monitor_mode": "max",
    "loss": "binary_crossentropy", "metrics": ["AUC", "logloss"],
    "task": "binary_classification", "shuffle": True, "save_best_only": True,
}  # fmt: skip
FUXI_MODELS = {
    "fuxictr_dcn": {
        "label": "FuxiCTR 2.3.10 DCN (BARS DCN_frappe_x1_013)",
        "class": ("DCN/DCN_torch/src/DCN.py", "DCN"),
        "params": {
            **FUXI_COMMON, "dnn_hidden_units": [400, 400, 400], "num_cross_layers": 3,
            "net_dropout": 0.2,
        },
    },
    "fuxictr_dcnv2": {
        "label": "FuxiCTR 2.3.10 DCN-v2 (BARS DCNv2_frappe_x1_007)",
        "class": ("DCNv2/src/DCNv2.py", "DCNv2"),
        "params": {
            **FUXI_COMMON, "model_structure": "parallel", "use_low_rank_mixture": False,
            "low_rank": 32, "num_experts": 4, "parallel_dnn_hidden_units": [400, 400, 400],
            "stacked_dnn_hidden_units": [500, 500, 500], "num_cross_layers": 4,
            "net_dropout": 0.4,
        },
    },
}  # fmt: skip
# Diagnostic: the published DCN without its embedding regulariser (everything else the same).
FUXI_MODELS["fuxictr_dcn_emb_l2_0"] = {
    "label": "diagnostic: FuxiCTR DCN, embedding_regularizer 0",
    "class": FUXI_MODELS["fuxictr_dcn"]["class"],
    "params": {**FUXI_MODELS["fuxictr_dcn"]["params"], "embedding_regularizer": 0},
}
ROCKET = "rocketctr_booster"
ROCKET_LABEL = "rocketctr `frappe` preset booster (booster_only)"
# The protocol of the preset change (not yet on this branch), the same as FuxiCTR's.
ROCKET_OVERRIDES = {
    "distill.mode": "booster_only",
    "train.num_epochs": 100,
    "train.early_stopping_patience": 2,
    "train.lr_plateau_factor": 0.1,
    "train.lr_plateau_patience": 1,
}
PUBLISHED_VALID_AUC = {"fuxictr_dcn": 0.984547, "fuxictr_dcnv2": 0.984840}


def libfm_to_csv(src: str | Path, dst: str | Path) -> int:
    """Frappe libfm rows -> FuxiCTR's CSV: `label,<field>...`, label 0/1, ids as strings.

    Each row must hold exactly one `index:1` per field, in field order (the Frappe files
    do). Returns the number of rows written.
    """
    rows = 0
    with open(src) as f, open(dst, "w") as out:
        out.write(",".join(("label", *FIELDS)) + "\n")
        for number, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 1 + len(FIELDS):
                raise ValueError(f"{src}:{number}: {len(parts) - 1} features, not {len(FIELDS)}")
            label = "1" if float(parts[0]) > 0 else "0"
            ids = [p.split(":", 1)[0] for p in parts[1:]]
            out.write(",".join((label, *ids)) + "\n")
            rows += 1
    return rows


# ------------------------------------------------------------------ FuxiCTR side (worker)
def worker(model_key: str, seed: int, model_zoo: str, work_dir: str) -> dict:
    """Runs in the FuxiCTR venv: one training run; returns its record."""
    import importlib.util
    import logging

    import numpy as np
    import torch

    torch.set_num_threads(1)
    from fuxictr.features import FeatureMap
    from fuxictr.preprocess import FeatureProcessor, build_dataset
    from fuxictr.pytorch.dataloaders import RankDataLoader
    from fuxictr.pytorch.torch_utils import seed_everything
    from sklearn.metrics import log_loss, roc_auc_score

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    work = Path(work_dir)
    csv_dir = work / "csv"
    csv_dir.mkdir(parents=True, exist_ok=True)
    csvs = {}
    for split, src in (("train", TRAIN), ("valid", VALID)):
        csvs[split] = csv_dir / f"{split}.csv"
        if not csvs[split].exists():
            tmp = csvs[split].with_suffix(".tmp")
            libfm_to_csv(src, tmp)
            tmp.rename(csvs[split])
    spec = FUXI_MODELS[model_key]
    params = {
        **spec["params"],
        "model": spec["class"][1],
        "model_id": f"{model_key}_s{seed}",
        "dataset_id": "frappe_rocketctr",
        "data_root": str(work / "fuxictr_data"),
        "model_root": str(work / "fuxictr_models"),
        "data_format": "csv",
        "train_data": str(csvs["train"]),
        "valid_data": str(csvs["valid"]),
        "test_data": None,
        "min_categr_count": 1,
        "feature_cols": [
            {"name": list(FIELDS), "active": True, "dtype": "str", "type": "categorical"}
        ],
        "label_col": {"name": "label", "dtype": "float"},
        "seed": seed,
        "gpu": -1,
        "verbose": 0,
        "num_workers": 1,
    }
    seed_everything(seed=seed)
    start = time.perf_counter()
    encoder = FeatureProcessor(**params)
    params["train_data"], params["valid_data"], params["test_data"] = build_dataset(
        encoder, **params
    )
    data_dir = os.path.join(params["data_root"], params["dataset_id"])
    feature_map = FeatureMap(params["dataset_id"], data_dir)
    feature_map.load(os.path.join(data_dir, "feature_map.json"), params)
    params["data_format"] = "parquet"
    prep_seconds = time.perf_counter() - start
    seed_everything(seed=seed)

    path, name = spec["class"]
    module_spec = importlib.util.spec_from_file_location(name, Path(model_zoo) / path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    model = getattr(module, name)(feature_map, **params)
    num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    os.makedirs(model.model_dir, exist_ok=True)

    history = []
    epoch_start = [time.perf_counter()]
    checkpoint_and_earlystop = model.checkpoint_and_earlystop

    def recorded(logs, min_delta=1e-6):  # once per epoch (eval_steps None)
        checkpoint_and_earlystop(logs, min_delta)
        now = time.perf_counter()
        history.append(
            {
                "epoch": model._epoch_index + 1,
                **{k: float(v) for k, v in logs.items()},
                "lr_after": model.optimizer.param_groups[0]["lr"],
                "seconds": now - epoch_start[0],
            }
        )
        epoch_start[0] = now

    model.checkpoint_and_earlystop = recorded
    train_gen, valid_gen = RankDataLoader(feature_map, stage="train", **params)
    start = time.perf_counter()
    model.fit(train_gen, validation_data=valid_gen, **params)
    fit_seconds = time.perf_counter() - start
    probs = model.predict(valid_gen)
    labels = np.concatenate([batch["label"].numpy().reshape(-1) for batch in valid_gen]).astype(
        np.float64
    )
    monitor = [h["AUC"] for h in history]
    vocab = {f: feature_map.features[f]["vocab_size"] for f in FIELDS}
    oov_rows = _oov_rows(csvs["train"], csvs["valid"])
    return {
        "model": model_key,
        "seed": seed,
        "auc": float(roc_auc_score(labels, probs)),
        "logloss": float(log_loss(labels, np.clip(probs, 1e-7, 1 - 1e-7))),
        "num_eval_rows": int(len(labels)),
        "epochs_run": len(history),
        "best_epoch": int(np.argmax(monitor)) + 1,
        "seconds": fit_seconds,
        "prep_seconds": prep_seconds,
        "params": int(num_params),
        "history": history,
        "vocab_size": vocab,
        "valid_rows_with_an_oov_id": oov_rows,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def _oov_rows(train_csv: Path, valid_csv: Path) -> int:
    """Validation rows with at least one id that the train file never has in its field."""

    def rows(path):
        with open(path) as f:
            next(f)
            return [line.rstrip("\n").split(",")[1:] for line in f]

    seen = [set(column) for column in zip(*rows(train_csv), strict=True)]
    return sum(any(v not in s for v, s in zip(row, seen, strict=True)) for row in rows(valid_csv))


# ------------------------------------------------------------------ rocketctr side (driver)
def run_rocket(seed: int, work_dir: Path) -> dict:
    """One `frappe` preset booster_only run through quality.run_quality; its record."""
    import quality

    from rocketctr.config.core import load_config

    config = load_config("frappe").replace(ROCKET_OVERRIDES)
    variants = {"booster": quality.VARIANTS["booster"]}
    result = quality.run_quality(
        config, [str(TRAIN)], [str(VALID)], [seed], work_dir / "rocket_runs", variants
    )
    run = result["runs"][0]
    aucs = [auc for _, auc in run["curve"]]
    return {
        "model": ROCKET,
        "seed": seed,
        "auc": run["auc"],
        "logloss": run["logloss"],
        "gauc": run["gauc"],
        "epochs_run": len(aucs),
        "best_epoch": aucs.index(max(aucs)) + 1,
        "seconds": run["seconds"],
        "train_seconds": run["train_seconds"],
        "params": rocket_params(config),
        "curve": run["curve"],
        "config": config.to_dict(),
    }


def rocket_params(config) -> int:
    """Trainable parameters of the booster and the embedding rows it reads (no light net)."""
    import numpy as np

    from rocketctr.features.schema import load_schema
    from rocketctr.model.cotrain import build_model

    model = build_model(config, load_schema("frappe"))
    return int(sum(np.prod(v.shape) for v in model.trainable_variables if "light" not in v.name))


def run_fuxictr(args, model_key: str, seed: int) -> dict:
    env = {**os.environ, "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    command = [
        args.fuxictr_python, __file__, "--worker", model_key, str(seed),
        "--model_zoo", args.model_zoo, "--work_dir", args.work_dir,
    ]  # fmt: skip
    log = Path(args.work_dir) / "logs" / f"{model_key}_s{seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as stderr:
        out = subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"FuxiCTR worker failed ({out.returncode}); see {log}")
    return json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f} (1 seed)"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def report(records: list[dict], common) -> tuple[str, dict]:
    labels = {ROCKET: ROCKET_LABEL, **{k: v["label"] for k, v in FUXI_MODELS.items()}}
    by_model: dict[str, list[dict]] = {}
    for r in sorted(records, key=lambda r: (r["model"], r["seed"])):
        by_model.setdefault(r["model"], []).append(r)
    order = [m for m in (*FUXI_MODELS, ROCKET) if m in by_model]
    rows, summary = [], {}
    for m in order:
        runs = by_model[m]
        aucs, losses = [r["auc"] for r in runs], [r["logloss"] for r in runs]
        summary[m] = {
            "seeds": [r["seed"] for r in runs],
            "auc": [statistics.fmean(aucs), statistics.stdev(aucs) if len(aucs) > 1 else 0.0],
            "logloss": [statistics.fmean(losses), statistics.stdev(losses) if len(aucs) > 1 else 0],
        }
        rows.append(
            [
                labels[m],
                ", ".join(str(r["seed"]) for r in runs),
                mean_std(aucs),
                mean_std(losses),
                ", ".join(f"{r['best_epoch']}/{r['epochs_run']}" for r in runs),
                f"{statistics.fmean(r['seconds'] for r in runs):.0f}",
                f"{runs[0]['params']:,}",
            ]
        )
    headers = [
        "library / model", "seeds", "AUC (mean ± std)", "logloss", "best/last epoch per seed",
        "s / run", "params",
    ]  # fmt: skip
    lines = [
        "# FuxiCTR (published Frappe_x1 configs) vs rocketctr's `frappe` booster, same data",
        "",
        f"Train `{TRAIN.name}` (202,027 rows), early stopping and metrics on "
        f"`{VALID.name}` (57,722 rows, all of them): exact AUC (sklearn) and logloss of the "
        "best validation epoch's weights. Both sides: early stopping patience 2 on "
        "validation AUC, LR x0.1 per epoch without improvement, ≤ 100 epochs. FuxiCTR: "
        f"2.3.10 (model_zoo at {FUXICTR_COMMIT[:10]}), torch CPU 1 thread, BARS settings "
        f"(reczoo/BARS {BARS_COMMIT[:10]}): emb 10, 400-400-400 relu + BN, Adam 1e-3, "
        "batch 4096, L2 0.05 on the whole embedding tables; DCN 3 crosses, dropout 0.2; "
        "DCN-v2 parallel, 4 full-rank crosses, dropout 0.4. rocketctr: preset `frappe` + "
        f"{ROCKET_OVERRIDES} (2 TF threads shared with another job). "
        "s / run: training wall time incl. per-epoch validation, machine shared.",
        "",
        common.markdown_table(headers, rows),
        "",
    ]
    published = [
        f"{labels[m]}: published validation AUC on the original Frappe_x1 split "
        f"{PUBLISHED_VALID_AUC[m]:.4f} (one seed; BARS log)"
        for m in order
        if m in PUBLISHED_VALID_AUC
    ]
    lines += [f"- {p}" for p in published]
    if "fuxictr_dcn" in summary and ROCKET in summary:
        delta = summary["fuxictr_dcn"]["auc"][0] - summary[ROCKET]["auc"][0]
        summary["delta_auc_fuxictr_dcn_minus_rocketctr"] = delta
        lines += [
            "",
            f"FuxiCTR DCN vs rocketctr frappe booster: ΔAUC = {delta:+.4f} (FuxiCTR − "
            f"rocketctr, means over seeds {summary['fuxictr_dcn']['seeds']} / "
            f"{summary[ROCKET]['seeds']}).",
        ]
    oov = next((r.get("valid_rows_with_an_oov_id") for r in records if "vocab_size" in r), None)
    if oov is not None:
        lines += [
            "",
            f"FuxiCTR vocabulary (min_categr_count 1, from train): validation rows with an id "
            f"unseen in train: {oov:,} of 57,722 (they hit the field's OOV row in FuxiCTR, "
            "an untrained own row in rocketctr).",
        ]
    return "\n".join(lines) + "\n", summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fuxictr_python", default="/work/venv-fuxictr/bin/python")
    parser.add_argument("--model_zoo", default="/work/fuxictr-src/model_zoo")
    parser.add_argument("--work_dir", default="/tmp/fuxictr_compare")
    parser.add_argument("--seeds", default="0", help="Comma-separated seeds.")
    parser.add_argument(
        "--models",
        default=",".join([*FUXI_MODELS, ROCKET]),
        help=f"Comma-separated, of {[*FUXI_MODELS, ROCKET]}.",
    )
    parser.add_argument("--report_only", action="store_true", help="Table of the records only.")
    parser.add_argument("--conclusion", default="", help="A sentence appended to the table.")
    parser.add_argument("--out", default="fuxictr_compare", help="Results file stem.")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(
            json.dumps(worker(args.worker[0], int(args.worker[1]), args.model_zoo, args.work_dir))
        )
        return 0

    # This checkout's rocketctr (not another one installed in the venv), then benchmarks/.
    sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
    import common  # imports rocketctr before TensorFlow

    work = Path(args.work_dir)
    records_dir = work / "records"
    records_dir.mkdir(parents=True, exist_ok=True)
    models = args.models.split(",")
    unknown = [m for m in models if m not in (*FUXI_MODELS, ROCKET)]
    if unknown:
        parser.error(f"unknown models {unknown}")
    if not args.report_only:
        for seed in (int(s) for s in args.seeds.split(",")):
            for m in models:
                path = records_dir / f"{m}_s{seed}.json"
                if path.exists():
                    continue
                print(f"--- {m} seed {seed}", flush=True)
                record = run_rocket(seed, work) if m == ROCKET else run_fuxictr(args, m, seed)
                path.write_text(json.dumps(record, indent=1, default=str))
                print(
                    f"{m} seed {seed}: AUC {record['auc']:.4f}, epochs {record['epochs_run']}, "
                    f"{record['seconds']:.0f} s",
                    flush=True,
                )
    records = [json.loads(p.read_text()) for p in sorted(records_dir.glob("*.json"))]
    text, summary = report(records, common)
    if args.conclusion:
        text += f"\n{args.conclusion}\n"
    print(text)
    payload = {
        "args": vars(args),
        "machine": common.machine_description(),
        "fuxictr_models": FUXI_MODELS,
        "rocket_overrides": ROCKET_OVERRIDES,
        "summary": summary,
        "runs": records,
    }
    print("Written to", *common.write_results(args.out, payload, text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
