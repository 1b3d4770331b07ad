"""The TF Serving warmup file: `assets.extra/tf_serving_warmup_requests`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from rocketctr.serving.serving_module import SERVING_SIGNATURE

WARMUP_FILE = "tf_serving_warmup_requests"
WARMUP_ROWS = 100


def write_warmup(
    path: Path,
    rows: Mapping[str, np.ndarray],
    input_dtypes: Mapping[str, tf.DType],
    model_name: str,
    num_rows: int = WARMUP_ROWS,
) -> int:
    """Writes PredictionLog records TF Serving replays before it serves a version.

    One single-row request (the common online shape) and the rest of the first `num_rows`
    rows in three batched requests, so the batch-1 and batched code paths are both warm.

    Returns:
        The number of requests written.
    """
    n = min(num_rows, len(next(iter(rows.values()))))
    bounds = [0, 1] + [int(b) for b in np.linspace(1, n, 4)[1:]] if n > 1 else [0, 1]
    chunks = [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    with tf.io.TFRecordWriter(str(path)) as writer:
        for start, stop in chunks:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SERVING_SIGNATURE)
            )
            for column, dtype in input_dtypes.items():
                request.inputs[column].CopyFrom(
                    tf.make_tensor_proto(rows[column][start:stop], dtype=dtype)
                )
            record = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(record.SerializeToString())
    return len(chunks)
