"""A training run's model dir as others read it: its files, lock, checkpoints, selected epochs."""
