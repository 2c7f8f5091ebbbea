"""Training: optimiser and schedule, resumable loop, run checkpoints."""
