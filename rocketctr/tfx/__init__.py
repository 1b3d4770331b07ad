"""The TFX Trainer module (`rocketctr.tfx.trainer.run_fn`)."""
