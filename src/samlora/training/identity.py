"""A training run's identity: one hash over everything that decides its weights.

``last.pt``, ``config.yaml`` and the manifest of ``adapter.safetensors`` all record it. A
resume checkpoint is only used when its hash equals the run being started, so an edit of
``train.lr``, ``train.epochs``, the method, the backbone or the prepared training data
starts the run afresh instead of continuing old weights under a new config.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Settings of the run config that provably leave the weights unchanged: how often a log
#: line is written, and how many DataLoader workers decode images (every sample's
#: augmentation is a function of seed, epoch and index, so the worker count changes nothing).
NON_WEIGHT_KEYS: tuple[tuple[str, ...], ...] = (
    ("train", "log_every"),
    ("train", "num_workers"),
    ("train", "embedding_cache"),  # bit-identical at batch 1, float rounding otherwise
    ("train", "allocator"),  # where freed memory goes, never what is computed
)
#: Names in a run config (the run's, its method's, its train set's): renaming a method or a
#: union without changing its settings leaves the weights alone.
NAME_KEYS = ("name", "method", "base_method", "train_set")
#: Prompt settings read only at evaluation (predict_dataset), never while training.
EVAL_ONLY_PROMPT_KEYS = ("eval_modes", "eval_seed")
#: Files of a prepared dataset that pin its content: the case list with splits and label
#: paths, and the preparation options (reference, resolution, split variant).
DATA_FILES = ("index.csv", "dataset.json")


def weight_defining(rc: Mapping[str, Any]) -> dict[str, Any]:
    """``rc`` less the settings of :data:`NON_WEIGHT_KEYS` and the evaluation-only prompts."""
    out = copy.deepcopy(dict(rc))
    out.pop("run_hash", None)
    if "train_sets" in out:  # a RunSpec's config: its names do not train anything
        for key in NAME_KEYS:
            out.pop(key, None)
    for path in NON_WEIGHT_KEYS:
        node: Any = out
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    prompts = (out.get("method_cfg") or {}).get("prompts")
    if isinstance(prompts, dict):
        for key in EVAL_ONLY_PROMPT_KEYS:
            prompts.pop(key, None)
    return out


def data_digest(processed_dir: Path) -> str:
    """SHA-256 over the files of :data:`DATA_FILES` present in a prepared dataset folder."""
    h = hashlib.sha256()
    for name in DATA_FILES:
        path = Path(processed_dir) / name
        if path.is_file():
            h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def run_hash(rc: Mapping[str, Any], data_sha256: str) -> str:
    """Hex SHA-256 of the weight-defining run config and the training data's digest."""
    payload = {"config": weight_defining(rc), "data": data_sha256}
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
