import pytest

from rocketctr.config.core import Config, ConfigError, load_config, parse_override, preset_names
from rocketctr.distill.base import parse_methods
from rocketctr.features.schema import SchemaError, load_schema, parse_schema, schema_names


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
    assert parse_override("distill.methods.kd.weight=0.03") == ("distill.methods.kd.weight", 0.03)


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
        "name": "t",
        "format": "csv",
        "columns": ["y", "a", "b"],
        "label": "y",
        "dense": [{"name": "a"}],
        "categorical": [{"name": "b", "hash_buckets": 10}],
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"format": "xls"}, "key 'format': must be one of .* Received: 'xls'"),
        ({"label": "z"}, "key 'label': must be one of the columns. Received: 'z'"),
        (
            {"categorical": [{"name": "b"}]},
            "needs exactly one of \\['hash_buckets', 'num_ids', 'vocabulary', 'buckets', "
            "'quantiles'\\]",
        ),
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


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("model.booster.dropout", 1.5, "must be in [0, 1)"),
        ("train.shuffle_buffer_rows", 0, "must be >= 1"),
        ("train.seed", -1, "must be >= 0"),
        ("train.batch_size", -5, "must be >= 1"),
        ("model.light.hidden_units", [8, -3], "must list positive layer widths"),
        ("model.booster.num_cross_layers", -1, "must be >= 0"),
        ("train.dense_optimizer.learning_rate", NAN, "must be finite and > 0"),
        ("train.embedding_optimizer.learning_rate", INF, "must be finite and > 0"),
        ("train.num_epochs", 0, "must be >= 1"),
        ("train.steps_per_epoch", 0, "must be null (one pass) or >= 1"),
    ],
)
def test_values_no_model_can_use_are_refused_when_the_config_loads(key, value, rule):
    with pytest.raises(ConfigError) as refused:
        Config().replace({key: value})
    assert str(refused.value) == f"Config key {key} {rule}. Received: {value!r}"


def test_numbers_as_users_write_them(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  dense_optimizer: {name: adam, learning_rate: 1e-3}\n")
    config = load_config(str(path))  # YAML 1.1 reads 1e-3 (no dot) as a string
    assert config.train.dense_optimizer.learning_rate == 0.001
    weight = Config().replace({"distill.methods.kd.weight": "1e2"}).distill
    assert parse_methods(weight)["kd"].weight == 100.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "train:\n  batch_size: 64\n  batch_size: 128\n",
            r":3: not valid YAML: key 'batch_size' appears twice \(lines 2 and 3\)",
        ),
        ("train: {batch_size: [64}\n", r":1: not valid YAML: "),
        (
            "train: !!python/object/apply:os.system [ls]\n",
            r":1: not valid YAML: could not determine a constructor",
        ),
    ],
)
def test_config_files_that_are_not_clean_yaml_are_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{path}{message}"):
        load_config(str(path))
    with pytest.raises(ConfigError, match=rf"^{tmp_path} is a directory, not a YAML file$"):
        load_config(str(tmp_path))


def test_a_boolean_bucket_count_is_refused():
    with pytest.raises(SchemaError, match="hash_buckets': must be a positive integer. Received: T"):
        parse_schema(_schema(categorical=[{"name": "b", "hash_buckets": True}]), source="my.yaml")


def test_a_directory_named_like_a_preset_does_not_hide_it(tmp_path, monkeypatch):
    # `rocketctr train --config frappe --model_dir frappe`, run twice from the same directory.
    (tmp_path / "frappe").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_config("frappe").schema == "frappe"
    assert load_schema("frappe").name == "frappe"


def test_a_config_file_an_earlier_run_recorded_loads_and_resumes_the_same_towers():
    # Before each tower owned its Config, a recorded config listed every tower knob.
    every_knob = {
        "hidden_units": [],
        "num_cross_layers": 3,
        "projection_dim": None,
        "cross_structure": "parallel",
        "cross_type": "matrix",
        "cin_layer_sizes": [128, 128],
        "attention_units": [80, 40],
        "dropout": 0.0,
        "batch_norm": False,
        "output_dim": 16,
    }
    booster = {**every_knob, "name": "dcn", "hidden_units": [8], "num_cross_layers": 2}
    light = {**every_knob, "name": "mlp", "hidden_units": [4]}
    config = Config.from_dict({"model": {"booster": booster, "light": light}})
    assert (
        config.model.booster
        == Config.from_dict(
            {"model": {"booster": {"name": "dcn", "hidden_units": [8], "num_cross_layers": 2}}}
        ).model.booster
    )
    assert "cin_layer_sizes" not in config.to_dict()["model"]["light"]
    # A knob the tower does not read, set to another value, was refused then and is now.
    with pytest.raises(ConfigError, match=r"tower 'mlp' does not use \['cin_layer_sizes'\]"):
        Config.from_dict({"model": {"light": {**light, "cin_layer_sizes": [4]}}})
