"""Evaluation: per-image metrics inside the FOV, then aggregation over images and seeds."""
