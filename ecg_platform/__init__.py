"""ecg-platform: MLflow-tracked PyTorch platform for patient-specific ECG beat classification."""

import os

# Idle OpenMP threads sleep instead of spinning: with parallel workers (or any other load) on few
# cores, spinning threads stall each other and a training step gets ~10x slower. Must be set before
# torch is imported; an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
