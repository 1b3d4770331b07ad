"""A built-in Criteo-shaped data generator with planted feature crosses.

The click logit is a sum of first-order effects, a dense-count effect, and planted pairwise
crosses ⟨u_f[id_f], v_g[id_g]⟩ between categorical fields. A deep crossing booster can learn
the crosses; a light net alone mostly cannot, so distillation has something to transfer.
Files are written in the raw Criteo TSV format and read back through the normal reader, so
the default job exercises the same path as real data.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

NUM_DENSE = 13
NUM_CATEGORICAL = 26
# Cardinalities in the spirit of Criteo: a few huge fields, many small ones.
CARDINALITIES = (
    100, 60, 5000, 3000, 150, 12, 3000, 40, 3, 4000, 2000, 5000, 80,
    25, 3000, 5000, 10, 30, 200, 4, 5000, 10, 15, 3000, 50, 3000,
)  # fmt: skip
# (field, field) pairs whose interaction drives clicks: fields of tens to hundreds of values,
# so the crosses are learnable from a few hundred thousand rows.
PLANTED_CROSSES = ((0, 1), (4, 7), (12, 17), (5, 24), (13, 18), (0, 12), (1, 22), (4, 13))
CROSS_DIM = 4


def _zipf_ids(rng: np.random.Generator, cardinality: int, size: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, cardinality + 1) ** 1.05
    return rng.choice(cardinality, size=size, p=weights / weights.sum())


def generate(num_rows: int, seed: int = 0, world_seed: int = 1234) -> pd.DataFrame:
    """Generates rows in the Criteo column layout (label, I1..I13, C1..C26).

    Args:
        num_rows: rows to draw.
        seed: seed of the row draw (use different seeds for train and eval).
        world_seed: seed of the hidden click model; keep it equal for train and eval.

    Returns:
        A DataFrame with Criteo's columns: integer label, dense counts as nullable
        integers (about 10 % missing), categoricals as 8-hex-digit strings.
    """
    world = np.random.default_rng(world_seed)
    rng = np.random.default_rng(seed)
    tokens = [
        np.array([f"{t:08x}" for t in world.integers(0, 2**32, size=card)])
        for card in CARDINALITIES
    ]
    first_order = [world.normal(0.0, 0.35, size=card) for card in CARDINALITIES]
    crosses = [
        (
            f,
            g,
            world.normal(0.0, 1.0, (CARDINALITIES[f], CROSS_DIM)),
            world.normal(0.0, 1.0, (CARDINALITIES[g], CROSS_DIM)),
        )
        for f, g in PLANTED_CROSSES
    ]
    dense_scale = world.uniform(0.5, 3.0, size=NUM_DENSE)
    dense_weight = world.normal(0.0, 0.25, size=NUM_DENSE)

    ids = np.stack([_zipf_ids(rng, card, num_rows) for card in CARDINALITIES], axis=1)
    counts = np.floor(rng.lognormal(0.0, 1.0, (num_rows, NUM_DENSE)) * dense_scale).astype(np.int64)

    logit = np.full(num_rows, -1.6)
    for f in range(NUM_CATEGORICAL):
        logit += first_order[f][ids[:, f]]
    cross_scale = 0.9 / np.sqrt(CROSS_DIM)
    for f, g, u, v in crosses:
        logit += cross_scale * np.sum(u[ids[:, f]] * v[ids[:, g]], axis=1)
    logit += (np.log1p(counts) - 1.0) @ dense_weight
    labels = (rng.random(num_rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    frame = pd.DataFrame({"label": labels})
    missing = rng.random((num_rows, NUM_DENSE)) < 0.1
    for j in range(NUM_DENSE):
        frame[f"I{j + 1}"] = pd.array(np.where(missing[:, j], 0, counts[:, j]), dtype="Int64")
        frame.loc[missing[:, j], f"I{j + 1}"] = pd.NA
    for f in range(NUM_CATEGORICAL):
        frame[f"C{f + 1}"] = tokens[f][ids[:, f]]
    return frame


def write_criteo_tsv(frame: pd.DataFrame, path: Path) -> Path:
    """Writes a generated frame as raw Criteo TSV (no header, empty field = missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame.to_csv(tmp, sep="\t", header=False, index=False, na_rep="")
    tmp.rename(path)  # never leave a half-written file that a later run would trust
    return path


def ensure_synthetic_criteo(
    directory: Path, num_train_rows: int, num_eval_rows: int, seed: int = 0
) -> tuple[Path, Path]:
    """Writes (or reuses) train.tsv and eval.tsv under `directory`; returns their paths."""
    directory = Path(directory)
    train = directory / f"train_{num_train_rows}_s{seed}.tsv"
    evaluation = directory / f"eval_{num_eval_rows}_s{seed}.tsv"
    if not train.exists():
        write_criteo_tsv(generate(num_train_rows, seed=2 * seed), train)
    if not evaluation.exists():
        write_criteo_tsv(generate(num_eval_rows, seed=2 * seed + 1), evaluation)
    return train, evaluation


# ----------------------------------------------------------------------------- PFD flavour
# Impressions with user, context and item fields plus one privileged signal (dwell time, known
# only after the impression), in the layout of data_schemas/synthetic_pfd.yaml.
PFD_COLUMNS = (
    "label",
    "dwell_time",
    "user_id",
    "user_age",
    "user_gender",
    "hour",
    "device",
    "item_id",
    "item_category",
    "item_brand",
    "item_price",
)
PFD_NUM_USERS = 10000
PFD_NUM_ITEMS = 2000
PFD_NUM_CATEGORIES = 40
PFD_NUM_BRANDS = 300
PFD_AFFINITY_DIM = 4
# task: (base logit, scale of the latent intent z that dwell time reveals)
PFD_TASKS = {"ctr": (-0.8, 1.0), "cvr": (-2.0, 1.5)}
# With sequences (data_schemas/synthetic_sequence.yaml): each impression carries the user's
# last clicks (up to SEQUENCE_LENGTH items, "|"-separated), drawn mostly from the user's two
# favourite categories; every earlier click of the candidate's category adds SEQUENCE_EFFECT
# to the label logit (at most SEQUENCE_MAX_MATCHES of them count).
SEQUENCE_LENGTH = 10
SEQUENCE_FAVOURITE_SHARE = 0.7
SEQUENCE_CANDIDATE_FAVOURITE_SHARE = 0.3
SEQUENCE_EFFECT = 0.6
SEQUENCE_MAX_MATCHES = 3


def _pfd_world(world_seed: int) -> dict[str, np.ndarray]:
    """The hidden user/item attributes and effects of one PFD world."""
    world = np.random.default_rng(world_seed)
    k = PFD_AFFINITY_DIM
    return {
        "user_age": world.integers(0, 7, PFD_NUM_USERS),
        "user_gender": world.integers(0, 3, PFD_NUM_USERS),
        "user_bias": world.normal(0.0, 0.8, PFD_NUM_USERS),
        "user_taste": world.normal(0.0, 1.0, (PFD_NUM_USERS, k)),
        "item_category": _zipf_ids(world, PFD_NUM_CATEGORIES, PFD_NUM_ITEMS),
        "item_brand": _zipf_ids(world, PFD_NUM_BRANDS, PFD_NUM_ITEMS),
        "item_price": np.round(world.lognormal(3.0, 1.0, PFD_NUM_ITEMS), 2),
        "item_bias": world.normal(0.0, 0.8, PFD_NUM_ITEMS),
        "item_style": world.normal(0.0, 1.0, (PFD_NUM_ITEMS, k)),
        "age_category": world.normal(0.0, 0.5, (7, PFD_NUM_CATEGORIES)),
        "hour_category": world.normal(0.0, 0.3, (24, PFD_NUM_CATEGORIES)),
        "device_bias": world.normal(0.0, 0.2, 4),
        # Drawn last, so the attributes above are the same whether sequences are drawn or not.
        "user_favourites": world.integers(0, PFD_NUM_CATEGORIES, (PFD_NUM_USERS, 2)),
    }


def _item_columns(w: dict[str, np.ndarray], item: np.ndarray) -> dict[str, object]:
    return {
        "item_id": [f"i{i}" for i in item],
        "item_category": [f"c{c}" for c in w["item_category"][item]],
        "item_brand": [f"b{b}" for b in w["item_brand"][item]],
        "item_price": w["item_price"][item],
    }


def _items_of_categories(
    w: dict[str, np.ndarray], categories: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One random item of each given category (any item for a category that has none)."""
    order = np.argsort(w["item_category"], kind="stable")
    counts = np.bincount(w["item_category"], minlength=PFD_NUM_CATEGORIES)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pick = starts[categories] + np.floor(rng.random(len(categories)) * counts[categories])
    items = order[np.minimum(pick.astype(np.int64), PFD_NUM_ITEMS - 1)]
    empty = counts[categories] == 0
    items[empty] = rng.integers(0, PFD_NUM_ITEMS, int(empty.sum()))
    return items


def _click_sequences(
    w: dict[str, np.ndarray], user: np.ndarray, category: np.ndarray, rng: np.random.Generator
) -> tuple[list[str], list[str], np.ndarray]:
    """("|"-joined earlier clicks per row, their categories, how many share the candidate's
    category)."""
    lengths = rng.integers(0, SEQUENCE_LENGTH + 1, len(user))
    owner = np.repeat(np.arange(len(user)), lengths)
    favourite = w["user_favourites"][user[owner], rng.integers(0, 2, len(owner))]
    random = _zipf_ids(rng, PFD_NUM_CATEGORIES, len(owner))
    categories = np.where(rng.random(len(owner)) < SEQUENCE_FAVOURITE_SHARE, favourite, random)
    clicks = _items_of_categories(w, categories, rng)
    matches = np.bincount(
        owner, weights=w["item_category"][clicks] == category[owner], minlength=len(user)
    )
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    spans = list(zip(bounds[:-1], bounds[1:], strict=True))
    texts = ["|".join(f"i{i}" for i in clicks[a:b]) for a, b in spans]
    clicked = w["item_category"][clicks]
    categories_text = ["|".join(f"c{c}" for c in clicked[a:b]) for a, b in spans]
    return texts, categories_text, matches


def generate_pfd(
    num_rows: int,
    seed: int = 0,
    world_seed: int = 4321,
    task: str = "ctr",
    sequence: bool = False,
) -> pd.DataFrame:
    """Generates rows for Privileged Features Distillation experiments.

    The label logit is f(x) + s·z: f(x) holds user and item biases, a user×item affinity
    ⟨a_user, b_item⟩ (what a two-tower net can represent), an age×category and an
    hour×category cross; z ~ N(0, 1) is the user's latent intent in this impression. No
    servable feature carries z, so labels are noisy given x. The privileged `dwell_time`
    (seconds) is log-normal with log-mean 0.5 + 0.5·(f(x) + s·z): how long a user looks
    reflects how much they like the item right now. A booster that reads it predicts the
    click probability almost at once, and its soft targets σ(f + s·z) are a far less noisy
    signal about f than the 0/1 labels: what PFD hands to the light net.

    Args:
        num_rows: rows to draw.
        seed: seed of the row draw (different for train and eval).
        world_seed: seed of the hidden model; equal for train and eval.
        task: "ctr" (label = click, dwell time in the viewport) or "cvr" (rows are clicks,
            label = conversion, dwell time on the landing page; rarer positives, a stronger
            post-click signal).
        sequence: also draw `click_sequence`, the user's earlier clicks (and
            `click_category_sequence`, their categories), whose matches with the candidate's
            category raise the logit (see SEQUENCE_EFFECT); a share of the candidates then
            comes from the user's favourite categories.

    Returns:
        A DataFrame with `PFD_COLUMNS` (and the two sequences): integer label, float
        dwell_time and item_price, categorical values as strings.
    """
    if task not in PFD_TASKS:
        raise ValueError(f"task must be one of {sorted(PFD_TASKS)}. Received: {task!r}")
    base, intent_scale = PFD_TASKS[task]
    w = _pfd_world(world_seed)
    rng = np.random.default_rng(seed)
    user = _zipf_ids(rng, PFD_NUM_USERS, num_rows)
    item = _zipf_ids(rng, PFD_NUM_ITEMS, num_rows)
    sequence_rng = np.random.default_rng([seed, 1])  # the draws of `rng` stay the same
    if sequence:
        liked = sequence_rng.random(num_rows) < SEQUENCE_CANDIDATE_FAVOURITE_SHARE
        favourite = w["user_favourites"][user, sequence_rng.integers(0, 2, num_rows)]
        item = np.where(liked, _items_of_categories(w, favourite, sequence_rng), item)
    hour = rng.integers(0, 24, num_rows)
    device = rng.integers(0, 4, num_rows)
    age, category = w["user_age"][user], w["item_category"][item]
    f = (
        base
        + w["user_bias"][user]
        + w["item_bias"][item]
        - 0.15 * np.log(w["item_price"][item])
        + w["device_bias"][device]
        + np.sum(w["user_taste"][user] * w["item_style"][item], axis=1) / np.sqrt(PFD_AFFINITY_DIM)
        + w["age_category"][age, category]
        + w["hour_category"][hour, category]
    )
    extra = {}
    if sequence:
        texts, categories_text, matches = _click_sequences(w, user, category, sequence_rng)
        f = f + SEQUENCE_EFFECT * np.minimum(matches, SEQUENCE_MAX_MATCHES)
        extra["click_sequence"] = texts
        extra["click_category_sequence"] = categories_text
    intent = rng.normal(0.0, 1.0, num_rows)
    logit = f + intent_scale * intent
    labels = (rng.random(num_rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    dwell = np.round(np.exp(0.5 + 0.5 * logit + rng.normal(0.0, 0.3, num_rows)), 2)
    return pd.DataFrame(
        {
            "label": labels,
            "dwell_time": dwell,
            "user_id": [f"u{u}" for u in user],
            "user_age": age.astype(str),
            "user_gender": w["user_gender"][user].astype(str),
            "hour": hour.astype(str),
            "device": device.astype(str),
            **_item_columns(w, item),
            **extra,
        },
        columns=list(PFD_COLUMNS) + list(extra),
    )


def pfd_item_catalogue(world_seed: int = 4321) -> pd.DataFrame:
    """Every item of a PFD world once, with the item columns `generate_pfd` writes."""
    return pd.DataFrame(_item_columns(_pfd_world(world_seed), np.arange(PFD_NUM_ITEMS)))


def ensure_synthetic_pfd(
    directory: Path,
    num_train_rows: int,
    num_eval_rows: int,
    seed: int = 0,
    task: str = "ctr",
    sequence: bool = False,
) -> tuple[Path, Path]:
    """Writes (or reuses) CSV train/eval files of `generate_pfd`; returns their paths."""
    directory = Path(directory)
    paths = []
    flavour = f"{task}_sequence" if sequence else task
    for split, rows, row_seed in (
        ("train", num_train_rows, 2 * seed),
        ("eval", num_eval_rows, 2 * seed + 1),
    ):
        path = directory / f"pfd_{flavour}_{split}_{rows}_s{seed}.csv"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".csv.tmp")
            frame = generate_pfd(rows, seed=row_seed, task=task, sequence=sequence)
            frame.to_csv(tmp, index=False)
            tmp.rename(path)
        paths.append(path)
    return paths[0], paths[1]


def ensure_synthetic(
    schema_name: str, directory: Path, num_train_rows: int, num_eval_rows: int, seed: int = 0
) -> tuple[Path, Path]:
    """Built-in data for a schema that has a generator: "criteo", "synthetic_pfd" or
    "synthetic_sequence".

    Raises:
        ValueError: naming the schemas that have built-in data.
    """
    writers = {
        "criteo": ensure_synthetic_criteo,
        "synthetic_pfd": ensure_synthetic_pfd,
        "synthetic_sequence": functools.partial(ensure_synthetic_pfd, sequence=True),
    }
    if schema_name not in writers:
        raise ValueError(
            f"No built-in synthetic data for schema {schema_name!r} (only {sorted(writers)}). "
            "Pass --train and --eval."
        )
    return writers[schema_name](Path(directory), num_train_rows, num_eval_rows, seed=seed)
