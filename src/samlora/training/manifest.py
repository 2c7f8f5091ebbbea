"""The manifest saved with a run's trainable weights, and its check against a rebuilt model.

``adapter.safetensors`` holds only the tensors a run trains; its metadata (strings) is the
manifest: which base weights they sit on (checkpoint file + SHA-256, pretrained source, or
``random``), the method config, the LoRA config peft recorded, and the trainable tensor
names and parameter count. Loading compares every entry with the model rebuilt from the
run's config, so weights never load silently into a different method, rank or base model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

FORMAT = "samlora-trainable/1"
#: LoraConfig fields that change the model a run trains (peft records many more)
PEFT_KEYS = ("peft_type", "r", "lora_alpha", "lora_dropout", "target_modules", "bias",
             "use_rslora", "use_dora")
MAX_LISTED = 10  # names shown per difference


class ManifestError(RuntimeError):
    """Saved weights do not belong to the model they are being loaded into."""


def _plain(value: Any) -> Any:
    """JSON-comparable form (sets sorted, enums and other objects as strings)."""
    return json.loads(json.dumps(value, sort_keys=True,
                                 default=lambda v: sorted(v) if isinstance(v, set) else str(v)))


def base_weights(backbone_cfg: Mapping) -> Any:
    """What the frozen weights are: ``{"file", "sha256"}`` of an official checkpoint,
    ``{"pretrained": source}`` for a baseline, or ``"random"``."""
    ckpt = backbone_cfg.get("checkpoint")
    if ckpt:
        return {"file": str(ckpt["file"]), "sha256": str(ckpt["sha256"])}
    if backbone_cfg.get("pretrained"):
        return {"pretrained": str(backbone_cfg["pretrained"])}
    return "random"


def peft_config(model: nn.Module) -> dict[str, dict[str, Any]]:
    """The LoRA config peft stored on each module it injected into (``{}`` without LoRA).

    Returns:
        ``{"<module>:<adapter>": {field: value}}`` for the fields of :data:`PEFT_KEYS`.
    """
    out = {}
    for name, mod in model.named_modules():
        configs = getattr(mod, "peft_config", None)
        if isinstance(configs, Mapping):
            for adapter, config in configs.items():
                d = config.to_dict()
                out[f"{name}:{adapter}"] = _plain({k: d[k] for k in PEFT_KEYS if k in d})
    return out


def trainable_names(model: nn.Module) -> list[str]:
    """Sorted names of the parameters with ``requires_grad``."""
    return sorted(n for n, p in model.named_parameters() if p.requires_grad)


def build_manifest(model: nn.Module, rc: Mapping[str, Any], fingerprint: str,
                   epochs: int) -> dict[str, str]:
    """The manifest of a run's weights.

    Args:
        model: the trained model.
        rc: the run config (``method``, ``train_set``, ``seed``, ``backbone``,
            ``method_cfg``, ``backbone_cfg``), as in ``config.yaml``.
        fingerprint: SHA-256 over the frozen parameters (``state.frozen_fingerprint``).
        epochs: epochs trained (0 for a method with nothing to train).

    Returns:
        ``{key: string}`` for the safetensors metadata; JSON for structured values.
    """
    names = trainable_names(model)
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "format": FORMAT,
        "method": str(rc["method"]),
        "train_set": str(rc["train_set"]),
        "seed": str(rc["seed"]),
        "backbone": str(rc["backbone"]),
        "base_weights": json.dumps(base_weights(rc["backbone_cfg"]), sort_keys=True),
        "method_cfg": json.dumps(_plain(rc["method_cfg"]), sort_keys=True),
        "peft_config": json.dumps(peft_config(model), sort_keys=True),
        "trainable_names": json.dumps(names),
        "trainable": str(count),
        "frozen_sha256": fingerprint,
        "epochs": str(epochs),
    }


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip(".") or "<value>": value}


def _diff(label: str, saved: Any, rebuilt: Any) -> list[str]:
    a, b = _flat(saved), _flat(rebuilt)
    return [f"{label} {k}: {a.get(k, '<absent>')!r} in the weights, "
            f"{b.get(k, '<absent>')!r} in the model" for k in sorted(set(a) | set(b))
            if a.get(k, "<absent>") != b.get(k, "<absent>")]


def check_manifest(manifest: Mapping[str, str], model: nn.Module, rc: Mapping[str, Any],
                   fingerprint: str, path: Path) -> None:
    """Check saved weights' manifest against the model rebuilt for them.

    Raises:
        ManifestError: naming the file and every difference (method, method config such
            as the LoRA rank, base checkpoint, LoRA config, trainable tensors, frozen
            weights).
    """
    if manifest.get("format") != FORMAT:
        raise ManifestError(f"{path}: no samlora manifest (format {manifest.get('format')!r}, "
                            f"expected {FORMAT!r}); retrain the run to write one")
    want = build_manifest(model, rc, fingerprint, epochs=0)
    problems = []
    if manifest["method"] != want["method"]:
        problems.append(f"method {manifest['method']!r} in the weights, {want['method']!r} "
                        "in the model")
    for key, label in (("method_cfg", "method config"), ("base_weights", "base checkpoint"),
                       ("peft_config", "LoRA config")):
        problems += _diff(label, json.loads(manifest[key]), json.loads(want[key]))
    saved, rebuilt = set(json.loads(manifest["trainable_names"])), set(trainable_names(model))
    if saved != rebuilt:
        problems.append(f"trainable tensors: missing {sorted(rebuilt - saved)[:MAX_LISTED]}, "
                        f"unexpected {sorted(saved - rebuilt)[:MAX_LISTED]}")
    elif manifest["trainable"] != want["trainable"]:
        problems.append(f"trainable parameters: {manifest['trainable']} in the weights, "
                        f"{want['trainable']} in the model")
    if manifest["frozen_sha256"] != fingerprint:
        problems.append(f"frozen base weights differ (fingerprint "
                        f"{manifest['frozen_sha256'][:12]}… saved, {fingerprint[:12]}… rebuilt)")
    if problems:
        raise ManifestError(f"{path}: weights do not match the model: " + "; ".join(problems))
