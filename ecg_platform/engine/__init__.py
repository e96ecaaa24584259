"""The training loop: epochs, early stopping, schedulers, checkpoints, callbacks (no MLflow)."""
