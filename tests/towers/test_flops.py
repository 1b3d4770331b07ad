"""Analytic FLOPs per example, checked against counts worked out by hand.

Criteo with embedding_dim 2: F = 26 fields, D = 13 dense, x0 = 26*2 + 13 = 65 wide.
"""

import pytest

from rocketctr.config.core import Config
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model
from rocketctr.towers.fm import fm_pairwise_flops

SCHEMA = load_schema("criteo")


def _model(booster: dict, light: dict):
    config = Config.from_dict({"model": {"embedding_dim": 2, "booster": booster, "light": light}})
    return build_model(config, SCHEMA)


def test_fm_pairwise_flops():
    # two field sums + squares of each embedding (3·F·d), square, difference, final sum (3·d)
    assert fm_pairwise_flops(26, 2) == 3 * 26 * 2 + 3 * 2


@pytest.mark.parametrize(
    ("light", "expected"),
    [
        ({"name": "lr"}, 2 * 13 + 26),  # dense weights; 26 first-order weights summed
        ({"name": "mlp", "hidden_units": [4]}, 2 * 65 * 4 + 2 * 4),
        ({"name": "fm"}, 2 * 13 + 26 + 162),
    ],
)
def test_light_tower_flops(light, expected):
    model = _model({"name": "deepfm", "hidden_units": [8]}, light)
    assert model.light.flops(num_fields=26, embedding_dim=2) == expected


@pytest.mark.parametrize(
    ("booster", "expected"),
    [
        # 2 full-rank crosses (W: 65x65, then x0∘(Wx+b)+x) ∥ MLP 65->8; output over 65+8.
        (
            {"name": "dcn", "hidden_units": [8], "num_cross_layers": 2},
            2 * (2 * 65 * 65 + 2 * 65) + 2 * 65 * 8 + 2 * 73,
        ),
        # 2 vector crosses (x·w over 65, then x0·s + x) ∥ MLP 65->8; output over 65+8.
        (
            {"name": "dcn", "hidden_units": [8], "num_cross_layers": 2, "cross_type": "vector"},
            2 * (2 * 65 + 2 * 65) + 2 * 65 * 8 + 2 * 73,
        ),
        # 1 rank-3 cross (U 65x3, V 3x65) stacked into MLP 65->8; output over 8.
        (
            {
                "name": "dcn_v2",
                "hidden_units": [8],
                "num_cross_layers": 1,
                "projection_dim": 3,
                "cross_structure": "stacked",
            },
            2 * 65 * 3 + 2 * 3 * 65 + 2 * 65 + 2 * 65 * 8 + 2 * 8,
        ),
        # linear (13 dense weights, 26 first-order weights summed) + CIN [4] (filter 26*26 x
        # 4: outer product, contraction, pooling, output) + MLP 65->8 + output.
        (
            {"name": "xdeepfm", "hidden_units": [8], "cin_layer_sizes": [4]},
            2 * 13 + 26 + (676 * 2 + 2 * 676 * 4 * 2 + 4 * 2) + 2 * 4 + 2 * 65 * 8 + 2 * 8,
        ),
        ({"name": "deepfm", "hidden_units": [8]}, 2 * 13 + 26 + 2 * 65 * 8 + 2 * 8 + 162),
    ],
)
def test_booster_tower_flops(booster, expected):
    model = _model(booster, {"name": "lr"})
    assert model.booster.flops(num_fields=26, embedding_dim=2) == expected
