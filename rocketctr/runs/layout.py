"""The names of the files and folders of a training run's model dir."""

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.json"  # per-epoch training and validation metrics of both towers
EVAL_DATA_FILE = "eval_data.json"  # the eval file globs of the latest train run on the dir
CHECKPOINT_DIR = "checkpoints"
BACKUP_DIR = "backup"  # mid-epoch backups; removed when a run ends normally
BEST_DIR = "best"  # the selected epoch's weights (training/selection.py)
LOCK_FILE = "lock"  # held by the process training in the dir; says which process it is
SCHEMA_FILE = "schema.yaml"  # the schema the run was trained with, whatever its file says now
