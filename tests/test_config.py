import pytest

from rocketctr.config import Config, ConfigError, load_config, parse_override, preset_names
from rocketctr.schema import SchemaError, load_schema, parse_schema, schema_names


def test_presets_and_schemas_load():
    assert "default" in preset_names()
    for name in preset_names():
        load_config(name)
    assert {"criteo", "avazu", "frappe"} <= set(schema_names())
    criteo = load_schema("criteo")
    assert len(criteo.dense) == 13 and len(criteo.categorical) == 26


def test_round_trip_and_overrides():
    config = Config().replace({"train.batch_size": 64, "model.booster.hidden_units": [8, 4]})
    assert config.train.batch_size == 64 and config.model.booster.hidden_units == (8, 4)
    assert Config.from_dict(config.to_dict()) == config
    assert parse_override("distill.hint_weight=0.03") == ("distill.hint_weight", 0.03)


def test_unknown_keys_and_wrong_types_are_named():
    with pytest.raises(
        ConfigError, match=r"Unknown config key\(s\) \['hint_wieght'\] in section distill"
    ):
        Config.from_dict({"distill": {"hint_wieght": 1.0}})
    with pytest.raises(ConfigError, match="train.batch_size must be int. Received: 'big'"):
        Config.from_dict({"train": {"batch_size": "big"}})
    with pytest.raises(ConfigError, match="Unknown config key 'train.batchsize'"):
        Config().replace({"train.batchsize": 3})
    with pytest.raises(ConfigError, match="Unknown config preset 'nope'"):
        load_config("nope")


def _schema(**overrides):
    data = {
        "name": "t", "format": "csv", "columns": ["y", "a", "b"], "label": "y",
        "dense": [{"name": "a"}], "categorical": [{"name": "b", "hash_buckets": 10}],
    }  # fmt: skip
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"format": "xls"}, "key 'format': must be one of .* Received: 'xls'"),
        ({"label": "z"}, "key 'label': must be one of the columns. Received: 'z'"),
        ({"categorical": [{"name": "b"}]}, "needs exactly one of 'hash_buckets' and 'num_ids'"),
        ({"categorical": [{"name": "b", "hash_buckets": 0}]}, "hash_buckets': must be a positive"),
        ({"dense": [{"name": "a", "transform": "log"}]}, "transform': must be one of"),
        ({"privileged": ["q"]}, "privileged': names a feature the schema does not define"),
        ({"colour": 1}, "unknown key"),
    ],
)
def test_schema_errors_name_file_key_and_value(overrides, message):
    with pytest.raises(SchemaError, match=message) as error:
        parse_schema(_schema(**overrides), source="my.yaml")
    assert str(error.value).startswith("my.yaml: key ")
