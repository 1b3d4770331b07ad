import pytest

from rocketctr.config.core import Config, ConfigError, DistillConfig
from rocketctr.distill import hint_weight, validate_schedule


def _at(config, steps):
    return [round(float(hint_weight(s, config)), 6) for s in steps]


def _kd(weight):
    return {"kd": {"weight": weight}}


def test_constant():
    assert _at(DistillConfig(methods=_kd(0.3)), [0, 1, 1000]) == [0.3, 0.3, 0.3]
    # λ sums the methods' weights.
    both = DistillConfig(methods={**_kd(0.3), "logit_mse": {"weight": 0.2}})
    assert _at(both, [0, 5]) == [0.5, 0.5]


def test_warmup_then_step():
    config = DistillConfig(methods=_kd(0.5), warmup_steps=10, ramp="step", ramp_steps=100)
    assert _at(config, [0, 9, 10, 11, 500]) == [0.0, 0.0, 0.5, 0.5, 0.5]


def test_warmup_then_linear_ramp():
    config = DistillConfig(methods=_kd(1.0), warmup_steps=10, ramp="linear", ramp_steps=4)
    assert _at(config, [9, 10, 11, 12, 14, 100]) == [0.0, 0.0, 0.25, 0.5, 1.0, 1.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"methods": _kd(-1.0)},
            "distill.methods.kd.weight must be finite and >= 0. Received: -1.0",
        ),
        ({"ramp": "cosine"}, r"distill.ramp must be one of \['linear', 'step'\]"),
        ({"warmup_steps": -5}, "must be >= 0"),
    ],
)
def test_invalid_schedules(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        validate_schedule(Config.from_dict({"distill": kwargs}).distill)
