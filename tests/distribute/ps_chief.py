"""Run as a script on the chief task of a parameter-server cluster (TF_CONFIG set).

argv: train file, eval file, model dir. Trains 2 epochs of 3 steps through `train.train`,
then prints JSON: where the shared embedding table's shards live, the per-epoch training
loss and the eval metrics.
"""

import json
import sys

from rocketctr.config.core import Config
from rocketctr.training import train  # before TensorFlow: sets TF_USE_LEGACY_KERAS

CONFIG = Config.from_dict(
    {
        "model": {
            "embedding_dim": 4,
            "booster": {"name": "dcn", "hidden_units": [8], "num_cross_layers": 1},
            "light": {"name": "mlp", "hidden_units": [4]},
        },
        "train": {
            "batch_size": 64,
            "num_epochs": 2,
            "steps_per_epoch": 3,
            "strategy": "parameter_server",
        },
    }
)

if __name__ == "__main__":
    train_file, eval_file, model_dir = sys.argv[1:4]
    result = train.train(CONFIG, [train_file], [eval_file], model_dir, verbose=0)
    table = result.model.embedding.table
    sharded = type(table).__name__ == "ShardedVariable"
    print(
        json.dumps(
            {
                "strategy": type(result.model.distribute_strategy).__name__,
                "sharded": sharded,
                "shard_devices": [v.device for v in table.variables] if sharded else [table.device],
                "shard_shapes": [v.shape.as_list() for v in table.variables] if sharded else [],
                "metrics": result.metrics,
                "train_loss": result.model.history.history["loss"],  # one value per epoch
            }
        )
    )
