"""The run config: its dataclasses and checks (core), the shipped presets, strict YAML loading."""

from rocketctr.config.core import Config, ConfigError, load_config, save_config

__all__ = ["Config", "ConfigError", "load_config", "save_config"]
