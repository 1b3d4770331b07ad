"""Behaviour sequences on the built-in synthetic data: the MLP light net with and without
the click sequences (items and their categories), the din booster against the DCN booster,
and the light net distilled from a din booster that alone reads the sequences (PFD with
features too slow to serve).

    python benchmarks/sequences.py --seeds 3 --train_rows 200000 --eval_rows 50000

Data: `rocketctr.data.synthetic.generate_pfd(sequence=True)` (schema synthetic_sequence):
every earlier click of the candidate's category adds to the label logit (dwell time is not
a feature of that schema). Config: the `pfd`
preset on that schema, trained to early stopping on the validation AUC of the net scored
(patience 2, at most --epochs), best epoch kept. "without sequence" runs on the same files
with both sequences declared privileged: the light net never reads them. Every run goes
through `rocketctr.training.train.train()` (benchmarks/quality.py `run_quality`); AUC and GAUC per
user are exact, on the eval rows, mean ± std over seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/common.py; imports rocketctr before TensorFlow)
import quality  # noqa: E402

# isort: split
from rocketctr.config.core import load_config, parse_override
from rocketctr.data.synthetic import ensure_synthetic_pfd
from rocketctr.features.schema import load_schema

DIN = {"name": "din", "hidden_units": [128, 64], "attention_units": [80, 40]}


def variants(without_sequence: str) -> dict:
    """name -> (overrides, tower scored, light-alone baseline), as quality.run_quality takes."""
    light, booster = {"distill.mode": "light_only"}, {"distill.mode": "booster_only"}
    hidden = {"schema": without_sequence}
    return {
        "light_without_sequence": ({**light, **hidden}, "light", None),
        "light_with_sequence": (light, "light", None),
        "booster": (booster, "booster", None),  # DCN; the sequence mean-pooled like any field
        "booster_din": ({**booster, "model.booster": DIN}, "booster", None),
        "distilled_din_sequence_privileged": (
            {"distill.mode": "co_train", "model.booster": DIN, **hidden},
            "light",
            "light_without_sequence",
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train_rows", type=int, default=200_000)
    parser.add_argument("--eval_rows", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=15, help="At most; early stopping ends.")
    parser.add_argument("--variants", default=None, help="Comma-separated subset.")
    parser.add_argument("--set", action="append", default=[], help="key=value override.")
    parser.add_argument("--out", default="sequences_synthetic")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rocketctr_sequences_") as tmp:
        tmp = Path(tmp)
        train_file, eval_file = ensure_synthetic_pfd(
            tmp / "data", args.train_rows, args.eval_rows, sequence=True
        )
        schema = load_schema("synthetic_sequence")
        sequences = ("click_sequence", "click_category_sequence")
        hidden = dataclasses.replace(
            schema,
            privileged=(*schema.privileged, *sequences),
            user_features=tuple(n for n in schema.user_features if n not in sequences),
        )
        without = tmp / "synthetic_sequence_privileged.yaml"
        without.write_text(yaml.safe_dump(hidden.to_dict(), sort_keys=False))
        overrides = {
            "schema": "synthetic_sequence",
            "train.num_epochs": args.epochs,
            "train.early_stopping_patience": 2,
            "train.restore_best": True,
            **dict(parse_override(s) for s in args.set),
        }
        config = load_config("pfd").replace(overrides)
        chosen = variants(str(without))
        if args.variants:
            chosen = {n: chosen[n] for n in args.variants.split(",")}
        result = quality.run_quality(
            config, [str(train_file)], [str(eval_file)], range(args.seeds), tmp / "runs", chosen
        )
    title = (
        f"Behaviour sequences, synthetic_sequence data ({args.train_rows} train / "
        f"{args.eval_rows} eval rows), `pfd` preset + {overrides}; {args.seeds} seeds. "
        + quality.describe_selection(config)
        + ". GAUC: AUC per user, weighted by rows."
    )
    text = quality.markdown(result, title)
    print(text)
    paths = common.write_results(args.out, {"args": vars(args), **result}, text)
    print("Written to", *paths)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
