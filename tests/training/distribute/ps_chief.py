"""Run as a script on the chief task of a parameter-server cluster (TF_CONFIG set).

argv: train file, eval file, model dir, and optionally a JSON mapping of config overrides.
Trains (by default 2 epochs of 3 steps) through `train.train`, exports the light net, then
prints JSON: where the shared embedding table's shards live, the per-epoch training loss,
the eval metrics and the export's path.
"""

import json
import sys
from pathlib import Path

from rocketctr.training import train  # before TensorFlow: sets TF_USE_LEGACY_KERAS
from tests.helpers import tiny_config

CONFIG = tiny_config(
    train={"batch_size": 64, "num_epochs": 2, "steps_per_epoch": 3, "strategy": "parameter_server"}
)

if __name__ == "__main__":
    train_file, eval_file, model_dir = sys.argv[1:4]
    config = CONFIG.replace(json.loads(sys.argv[4]) if len(sys.argv) > 4 else {})
    result = train.train(config, [train_file], [eval_file], model_dir, verbose=0)
    export = train.export_trained(result, [eval_file], Path(model_dir) / "export", force=True)
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
                "export": str(export),
            }
        )
    )
