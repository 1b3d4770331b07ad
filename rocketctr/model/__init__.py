"""The co-training model (shared tables, booster, light nets, one train step) and its optimizers."""
