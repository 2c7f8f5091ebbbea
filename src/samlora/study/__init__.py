"""Studies of params.yaml and the runs they need (RunSpec)."""
