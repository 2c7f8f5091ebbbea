"""Baseline networks from segmentation_models_pytorch and transformers, built offline.

Each architecture name maps to a library class and its constructor arguments. The real-size
ones are the baselines TopoLoRA-SAM compares against; each has a ``*_tiny`` variant (same
classes, a few % of the size) for tests and the CPU demo. Architectures are built from
configs alone; pretrained weights are loaded only when a backbone's ``pretrained`` names a
source, and a source that cannot be fetched stops the run with a message saying what to
download and where to put it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from samlora.models.baselines.archs import (  # noqa: F401  (re-exported)
    ARCHS,
    HF_KINDS,
    SMP_KINDS,
    SWIN_STAGES,
    BaselineArch,
    get_arch,
)

log = logging.getLogger(__name__)

#: How Mask2Former's query outputs become one logit map (see the segmenter module):
#: ``logratio`` (2 labels, fg/bg log-ratio; the default) or ``noisy_or`` (1 label, Seglab's).
REDUCTIONS = ("logratio", "noisy_or")
#: Weights sized by the number of labels: re-initialised when the source has another label
#: count (a 150-class ADE20K head) or lacks them. Mask2Former's ``criterion.empty_weight`` is
#: its loss's per-class weight vector, a constant of the config, not a learned weight.
LABEL_SIZED = {"segformer": ("decode_head.classifier.",),
               "mask2former": ("class_predictor.", "criterion.")}
#: Parts an encoder-only source (an ImageNet classifier such as nvidia/mit-b0) lacks as a
#: whole; they then start from random weights. A source holding only some of a part's
#: weights does not fit.
ENCODER_ONLY_NEW = {"segformer": ("decode_head.",), "mask2former": ()}
#: Source weights with no slot in the model (an image classifier's head).
DROPPED_PREFIXES = {"segformer": ("classifier.",), "mask2former": ()}
#: BatchNorm step counters: not weights, and absent from checkpoints saved by older code.
COUNTER_SUFFIX = ".num_batches_tracked"


def check_reduction(kind: str, reduction: Any, arch: str = "") -> str:
    """``reduction`` if it is known and fits the architecture kind, else a ValueError."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"backbones.<id>.reduction must be one of {list(REDUCTIONS)}, got "
                         f"{reduction!r}")
    if reduction != "logratio" and kind != "mask2former":
        raise ValueError(f"backbones.<id>.reduction: {reduction!r} applies to mask2former "
                         f"architectures only, not {arch or kind}; drop the key")
    return str(reduction)


class PooledBatchNorm(nn.BatchNorm2d):
    """BatchNorm of DeepLabV3+'s image-pooling branch, usable at batch size 1.

    The branch normalises a ``B×C×1×1`` input: one image has one value per channel, so
    there are no batch statistics and torch's BatchNorm refuses it in training. This one
    then normalises with its running statistics (as in eval mode); with two or more images
    it is plain BatchNorm. The study trains at batch size 1 with gradient accumulation.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] * x.shape[2] * x.shape[3] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        return super().forward(x)


def _batch_one_safe(net: nn.Module) -> nn.Module:
    """Swap the BatchNorm of every ASPP pooling branch for :class:`PooledBatchNorm`."""
    from segmentation_models_pytorch.decoders.deeplabv3.decoder import ASPPPooling

    for branch in [m for m in net.modules() if isinstance(m, ASPPPooling)]:
        for i, layer in enumerate(branch):
            if type(layer) is nn.BatchNorm2d:
                safe = PooledBatchNorm(layer.num_features, layer.eps, layer.momentum)
                safe.load_state_dict(layer.state_dict())
                branch[i] = safe
    return net


def _smp_net(a: BaselineArch, pretrained: str | None, where: str) -> nn.Module:
    net = _smp_build(a, pretrained, where)
    return _batch_one_safe(net) if a.kind == "deeplabv3plus" else net


def _smp_build(a: BaselineArch, pretrained: str | None, where: str) -> nn.Module:
    import segmentation_models_pytorch as smp

    cls = {"unet": smp.Unet, "deeplabv3plus": smp.DeepLabV3Plus}[a.kind]
    if pretrained is None:
        return cls(encoder_weights=None, classes=1, **a.options)
    if Path(pretrained).is_dir():  # a fetched Hub folder (samlora.models.hub_weights)
        from safetensors.torch import load_file

        net = cls(encoder_weights=None, classes=1, **a.options)
        net.encoder.load_state_dict(load_file(Path(pretrained) / "model.safetensors"))
        log.info("%s: encoder weights loaded from %s", where, pretrained)
        return net
    encoder = a.options["encoder_name"]
    settings = smp.encoders.encoders[encoder]["pretrained_settings"]
    if pretrained not in settings:
        raise ValueError(f"{where}: encoder {encoder} has no pretrained weights "
                         f"{pretrained!r}; smp knows {sorted(settings)}")
    repo, rev = settings[pretrained]["repo_id"], settings[pretrained]["revision"]
    try:
        return cls(encoder_weights=pretrained, classes=1, **a.options)
    except Exception as err:  # no network or cache: say what to fetch, never train from scratch
        raise RuntimeError(
            f"{where}: cannot load the {pretrained} weights of {encoder} ({err}). They come "
            f"from the Hugging Face repository {repo} (revision {rev}): on a machine with "
            f"internet run `huggingface-cli download {repo} --revision {rev}` and copy the "
            "Hugging Face cache (~/.cache/huggingface, or $HF_HOME) to this machine; or set "
            "the backbone's pretrained to null in params.yaml to train from random weights"
        ) from err


def _hf_config(a: BaselineArch, reduction: str = "logratio") -> Any:
    from transformers import Mask2FormerConfig, SegformerConfig, SwinConfig

    if a.kind == "segformer":
        return SegformerConfig(num_labels=1, **a.options)
    opts = dict(a.options)
    swin = SwinConfig(out_features=SWIN_STAGES, **opts.pop("swin"))
    # logratio: (background, foreground); noisy_or: foreground only (see BaselineSegmenter)
    labels = 1 if reduction == "noisy_or" else 2
    return Mask2FormerConfig(backbone_config=swin, num_labels=labels, **opts)


def _hf_net(a: BaselineArch, pretrained: str | None, where: str,
            reduction: str = "logratio") -> nn.Module:
    from transformers import Mask2FormerForUniversalSegmentation, SegformerForSemanticSegmentation

    cls = {"segformer": SegformerForSemanticSegmentation,
           "mask2former": Mask2FormerForUniversalSegmentation}[a.kind]
    config = _hf_config(a, reduction)
    if pretrained is None:
        return cls(config)
    local = Path(pretrained).is_dir()
    try:
        net, info = cls.from_pretrained(pretrained, config=config, ignore_mismatched_sizes=True,
                                        output_loading_info=True, local_files_only=local)
    except OSError as err:
        raise RuntimeError(
            f"{where}: cannot load pretrained weights {pretrained!r} ({err}). On a machine "
            f"with internet run `huggingface-cli download {pretrained}` and copy the Hugging "
            "Face cache (~/.cache/huggingface, or $HF_HOME) here, or put the repository's "
            "config.json and model.safetensors in a folder and set the backbone's pretrained "
            "to that folder; or set it to null to train from random weights") from err
    _check_loading(info, list(net.state_dict()), a.kind, pretrained, where)
    return net


def _check_loading(info: dict[str, Any], model_keys: list[str], kind: str, source: str,
                   where: str) -> list[str]:
    """Refuse weights of another architecture; log and return what was re-initialised.

    Allowed: label-sized weights (:data:`LABEL_SIZED`) of another shape or absent; a whole
    :data:`ENCODER_ONLY_NEW` part absent; source keys under :data:`DROPPED_PREFIXES`;
    absent BatchNorm counters. Anything else missing, of another shape, or unexpected is an
    error.
    """
    sized = LABEL_SIZED[kind]
    shapes = {str(m[0]): m[1] for m in info.get("mismatched_keys", []) if isinstance(m, tuple)}
    mismatched = set(shapes) | {str(m) for m in info.get("mismatched_keys", [])
                                if not isinstance(m, tuple)}
    missing = {str(k) for k in info.get("missing_keys", []) if not k.endswith(COUNTER_SUFFIX)}

    def body(part: str) -> set[str]:  # the part's weights that are not label-sized
        return {k for k in model_keys if k.startswith(part) and not k.startswith(sized)
                and not k.endswith(COUNTER_SUFFIX)}

    absent = tuple(p for p in ENCODER_ONLY_NEW[kind] if body(p) and body(p) <= missing)
    bad_missing = [k for k in missing if not k.startswith((*sized, *absent))]
    bad_shape = [k for k in mismatched if not k.startswith(sized)]
    unexpected = [k for k in info.get("unexpected_keys", [])
                  if not k.startswith(DROPPED_PREFIXES[kind])]
    if bad_missing or bad_shape or unexpected:
        raise RuntimeError(f"{where}: pretrained weights {source!r} do not fit the "
                           f"architecture: missing {sorted(bad_missing)[:20]}, other shape "
                           f"{sorted(bad_shape)[:20]}, unexpected {sorted(unexpected)[:20]}")
    renewed = [f"{p}* (not in the source)" for p in absent]
    renewed += [f"{k} (source shape {list(shapes[k])})" if k in shapes
                else f"{k} (not in the source)"
                for k in sorted(missing | mismatched) if not k.startswith(absent)]
    log.info("%s: loaded %s; re-initialised %s", where, source, "; ".join(renewed) or "nothing")
    return renewed


def build_net(arch: str, pretrained: str | None, where: str = "backbone",
              reduction: str = "logratio") -> nn.Module:
    """Build a baseline network for one foreground class.

    Args:
        arch: a key of :data:`ARCHS`.
        pretrained: None for random weights; for smp kinds the encoder weight name smp knows
            (``imagenet``) or a folder holding that encoder's ``model.safetensors`` (as
            :mod:`samlora.models.hub_weights` fetches it); for transformers kinds a Hugging Face repository id or a local
            folder holding ``config.json`` and the weights: an encoder-only source
            (``nvidia/mit-b0``) or a segmentation checkpoint of the same architecture
            (``nvidia/segformer-b0-finetuned-ade-512-512``,
            ``facebook/mask2former-swin-tiny-ade-semantic``), whose label-sized head is
            re-initialised.
        where: the config key of the backbone, for error messages (``backbones.unet_r34``).
        reduction: a key of :data:`REDUCTIONS`; ``noisy_or`` (mask2former only) builds
            Mask2Former with 1 label instead of 2.

    Returns:
        The library's module (smp model, ``SegformerForSemanticSegmentation`` or
        ``Mask2FormerForUniversalSegmentation``).

    Raises:
        ValueError: an unknown architecture or reduction, or one that does not fit.
        RuntimeError: the pretrained weights cannot be fetched or do not fit.
    """
    a = get_arch(arch)
    check_reduction(a.kind, reduction, arch)
    if a.kind in SMP_KINDS:
        return _smp_net(a, pretrained, where)
    return _hf_net(a, pretrained, where, reduction)
