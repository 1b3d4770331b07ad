"""Analytic FLOPs per example of a built tower, from its layer shapes.

Counted: matrix products as 2 FLOPs per multiply-add (2·in·out per Dense kernel, the CIN
filter contractions, xᵀw of a vector cross), plus the element-wise work of cross layers
(x0 ∘ (Wx + b) + x, x0 · (xᵀw) + b + x), CIN outer products and sum-pooling, the FM pairwise
term, and the sum of per-id first-order weights (LR, FM). Not counted: bias adds,
activations, BatchNorm/Dropout at inference, embedding gathers and feature hashing (memory
bound, the same for both towers on shared tables). The count is exact for what it counts and
deliberately simple: it ranks towers by compute, it does not predict latency.

Why not `tf.profiler`: its FLOP counter works on TF1 graphs (`tf.compat.v1.profiler`) and
does not see inside the function calls of a traced TF2 Keras model without extra plumbing,
and it would count the same ops anyway.
"""

from __future__ import annotations

import tensorflow_recommenders as tfrs
import tf_keras

from rocketctr.layers.cin import CIN
from rocketctr.layers.cross import VectorCross
from rocketctr.towers.base import Tower
from rocketctr.towers.din import TargetAttention
from rocketctr.towers.fm import FMTower
from rocketctr.towers.xdeepfm import DeepFMTower


def _dense_flops(layer: tf_keras.layers.Dense) -> int:
    fan_in, fan_out = layer.kernel.shape
    return 2 * int(fan_in) * int(fan_out)


def _cin_flops(cin: CIN, num_fields: int, embedding_dim: int) -> int:
    total = 0
    for w in cin.filters:
        rows, maps = (int(s) for s in w.shape)  # rows = H_{k-1} * F
        total += rows * embedding_dim  # outer product X^{k-1} ∘ X^0 per embedding position
        total += 2 * rows * maps * embedding_dim  # contraction with the filter
        total += maps * embedding_dim  # sum-pooling over the embedding dimension
    return total


def fm_pairwise_flops(num_fields: int, embedding_dim: int) -> int:
    """0.5·Σ_d((Σ_f e)² − Σ_f e²): two field sums, two squarings, a difference, a sum."""
    f, d = num_fields, embedding_dim
    return 2 * f * d + f * d + d + d + d


def flops_per_example(tower: Tower, num_fields: int, embedding_dim: int) -> int:
    """FLOPs one example costs in `tower`, from the shapes of its built layers.

    Args:
        tower: a built tower (its variables exist, e.g. after `build_model`).
        num_fields: categorical fields the tower sees (F of its [B, F, d] input).
        embedding_dim: embedding width d.

    Returns:
        The FLOP count per example (see the module docstring for what is counted).
    """
    if not tower.built:
        raise ValueError(f"Tower {tower.name!r} is not built; call the model once first.")
    total = 0
    # DIN's attention MLP runs once per sequence position: its Dense layers count L times.
    attention = {}
    for module in tower.submodules:
        if isinstance(module, TargetAttention):
            length = tower.inputs.sequence_length[module.name.removeprefix("attention_")]
            for dense in module.submodules:
                if isinstance(dense, tf_keras.layers.Dense):
                    attention[id(dense)] = length
            total += length * 4 * embedding_dim  # q − k, q ∘ k; the weighted sum
    for module in tower.submodules:
        if isinstance(module, tf_keras.layers.Dense) and id(module) in attention:
            total += attention[id(module)] * _dense_flops(module)
        elif isinstance(module, tf_keras.layers.Dense):
            total += _dense_flops(module) if module.built else 0  # LR's, with no dense column
        elif isinstance(module, tfrs.layers.dcn.Cross):
            # Its Dense (or low-rank U, V pair) is a submodule counted above; this is the
            # x0 ∘ (Wx + b) + x element-wise work (plus the optional diagonal term).
            width = int(module._dense.kernel.shape[1] if module._projection_dim is None
                        else module._dense_v.kernel.shape[1])  # fmt: skip
            total += 2 * width + (2 * width if module._diag_scale else 0)
        elif isinstance(module, VectorCross):
            width = int(module.kernel.shape[0])
            total += 2 * width + 2 * width  # x·w, then x0 · s + x
        elif isinstance(module, CIN):
            total += _cin_flops(module, num_fields, embedding_dim)
    if tower.uses_first_order:
        total += num_fields  # the sum of the fields' first-order weights
    if isinstance(tower, (FMTower, DeepFMTower)):
        total += fm_pairwise_flops(num_fields, embedding_dim)
    return total
