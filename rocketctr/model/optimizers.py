"""The optimizers a run builds from its config: tf_keras's, LazyAdam, and a linear warm-up.

Embedding tables and dense weights take separate optimizers (`train.embedding_optimizer`,
`train.dense_optimizer`): a sparse-friendly one for the tables, where a dense update of every
row each step would cost O(table size).
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras

from rocketctr.config.core import ConfigError, OptimizerConfig


class LazyAdam(tf_keras.optimizers.Adam):
    """Adam that, for an `IndexedSlices` gradient, updates only the rows it touches.

    tf_keras' Adam decays the moments of every row of an embedding table each step, so a
    step costs O(table size) however few rows the batch touched. Here the touched rows'
    moments and values follow Adam's formula (with the global step's bias correction);
    untouched rows, and their moments, stay exactly as they are (the "lazy" Adam of
    TensorFlow Addons / torch SparseAdam). Dense gradients take tf_keras Adam's path.
    The base class has already summed duplicate indices when `update_step` runs.
    """

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
            return super().update_step(gradient, variable)
        lr = tf.cast(self.learning_rate, variable.dtype)
        local_step = tf.cast(self.iterations + 1, variable.dtype)
        beta_1_power = tf.pow(tf.cast(self.beta_1, variable.dtype), local_step)
        beta_2_power = tf.pow(tf.cast(self.beta_2, variable.dtype), local_step)
        alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        epsilon_hat = (
            self.epsilon * tf.sqrt(1 - beta_2_power) if self.adaptive_epsilon else self.epsilon
        )
        var_key = self._var_key(variable)
        m = self._momentums[self._index_dict[var_key]]
        v = self._velocities[self._index_dict[var_key]]
        indices, values = gradient.indices, gradient.values
        m_rows = tf.gather(m, indices) * self.beta_1 + values * (1 - self.beta_1)
        v_rows = tf.gather(v, indices) * self.beta_2 + tf.square(values) * (1 - self.beta_2)
        m.scatter_update(tf.IndexedSlices(m_rows, indices))
        v.scatter_update(tf.IndexedSlices(v_rows, indices))
        variable.scatter_sub(
            tf.IndexedSlices(m_rows * alpha / (tf.sqrt(v_rows) + epsilon_hat), indices)
        )


_OPTIMIZERS = {
    "adam": tf_keras.optimizers.Adam,
    "lazy_adam": LazyAdam,
    "adagrad": tf_keras.optimizers.Adagrad,
    "sgd": tf_keras.optimizers.SGD,
    "ftrl": tf_keras.optimizers.Ftrl,
}


class _WarmUp:
    """Linear learning-rate warm-up, mixed into an optimizer class (`build_optimizer`).

    `learning_rate` reads as the rate of the current step: the stored rate (the `learning_rate`
    variable, checkpointed as before) × min(1, (iterations + 1) / warmup_steps). Setting it
    sets the current step's rate too, so the stored rate becomes value / that factor: the
    plateau decay's `lr = float(lr) × factor` (training/selection.py) decays the stored rate
    by exactly the factor at any step, and a resumed run (iterations and the stored rate
    restored) continues the warm-up where it was. A LearningRateSchedule would do neither: an
    optimizer built with one refuses a float rate.
    """

    def __init__(self, *args, warmup_steps: int, **kwargs):
        self.warmup_steps = warmup_steps
        super().__init__(*args, **kwargs)

    def _warmup_factor(self) -> tf.Tensor:
        step = tf.cast(self.iterations + 1, tf.float32)
        return tf.minimum(1.0, step / float(self.warmup_steps))

    @property
    def learning_rate(self):
        stored = super().learning_rate
        return stored * tf.cast(self._warmup_factor(), stored.dtype)

    @learning_rate.setter
    def learning_rate(self, value):
        setter = super(_WarmUp, type(self)).learning_rate.fset
        setter(self, value / self._warmup_factor())

    def get_config(self):
        return {**super().get_config(), "warmup_steps": self.warmup_steps}


_WARMUP_CLASSES: dict[str, type] = {}


def build_optimizer(config: OptimizerConfig) -> tf_keras.optimizers.Optimizer:
    if config.learning_rate <= 0:
        raise ConfigError(f"learning_rate must be > 0. Received: {config.learning_rate}")
    if config.clipnorm is not None and config.global_clipnorm is not None:
        raise ConfigError(
            "Set at most one of clipnorm and global_clipnorm. Received: "
            f"clipnorm={config.clipnorm}, global_clipnorm={config.global_clipnorm}"
        )
    kwargs = {"learning_rate": config.learning_rate}
    if config.clipnorm is not None:
        kwargs["clipnorm"] = config.clipnorm
    if config.global_clipnorm is not None:
        kwargs["global_clipnorm"] = config.global_clipnorm
    cls = _OPTIMIZERS[config.name]
    if config.warmup_steps:
        if config.name not in _WARMUP_CLASSES:
            _WARMUP_CLASSES[config.name] = type(f"WarmUp{cls.__name__}", (_WarmUp, cls), {})
        return _WARMUP_CLASSES[config.name](warmup_steps=config.warmup_steps, **kwargs)
    return cls(**kwargs)
