"""TensorBoard logging of a run, at the cost of the steps it records only."""

from __future__ import annotations

import tf_keras


class BatchTensorBoard(tf_keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback, doing its per-batch work only on the steps it records.

    Keras' own calls `tf.summary.scalar` for every metric at every batch (the writer keeps
    one step in `update_freq`): about 9 eager ops per step, waiting for the step's values,
    which cost a third of a small model's step and made Keras warn that
    `on_train_batch_end` is slow. The same summaries are written, at the same steps; the
    train graph is not written (a one-off ~0.1 s at the first batch).
    """

    def __init__(self, log_dir: str, update_freq: int) -> None:
        super().__init__(log_dir=log_dir, update_freq=update_freq, write_graph=False)
        self._steps = 0

    def on_train_begin(self, logs=None) -> None:
        super().on_train_begin(logs)
        self._steps = int(self.model._train_counter.numpy())  # what the writer's step reads

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._steps += 1
        if self._steps % self.update_freq == 0 or self._should_trace:
            super().on_train_batch_end(batch, logs)
