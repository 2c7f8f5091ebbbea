"""Build SAM 2 / SAM 2.1 (Hiera) models from the sam2 package's own configs and classes.

Why not ``sam2.build_sam.build_sam2``: it composes its config through Hydra's *global*
instance, which ``import sam2`` initialises as a side effect. samlora composes params.yaml
with Hydra too (``samlora.config``), and the two clash ("GlobalHydra is already
initialized" / "Cannot find primary config") depending on which runs first. Here the
packaged YAML (``sam2/configs/<release>/<arch>.yaml``) is read with ``OmegaConf.load``,
edited (input size, the tiny test config) and instantiated with ``hydra.utils.instantiate``,
which needs no global Hydra state at all. The first import of sam2 happens inside
:func:`sam2_hydra_guard`, which clears the global instance sam2 creates when there was none
before, so Hydra's global state is left as samlora found it (``samlora.config`` restores
any pre-existing one around its own compose).

The whole ``SAM2Base`` (video memory modules included) is built, so official checkpoints
load with strict key matching and parameter counts equal the release's (SAM 2.1 hiera_t:
38,962,498). :class:`samlora.models.sam2_segmenter.Sam2Segmenter` then keeps only the parts
single-image segmentation uses.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.resources
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from samlora.utils.io import torch_load_safe

log = logging.getLogger(__name__)

MAX_LISTED = 20  # key names shown in a mismatch error
IMG_MULTIPLE = 32  # Hiera: 4 px patches, windows of 8 tokens at the first stage
# State-dict entries only SAM 2.1 has (2.0 has Identity / no parameter there): the
# spatial no-object embedding and the projection of the object pointers' temporal encoding.
SAM21_ONLY_KEYS = frozenset({"no_obj_embed_spatial", "obj_ptr_tpos_proj.weight",
                             "obj_ptr_tpos_proj.bias"})
RELEASE_NAMES = {"sam2": "SAM 2 (2.0)", "sam2.1": "SAM 2.1"}

# The project's tiny SAM 2.1: the hiera_t config with every width and depth cut down
# (same classes; random weights only; tests and the CPU demo).
_TINY_OVERRIDES: dict[str, Any] = {
    "image_encoder": {
        "trunk": {"embed_dim": 16, "num_heads": 1, "stages": [1, 1, 2, 1],
                  "global_att_blocks": [3], "window_spec": [8, 4, 4, 2],
                  "window_pos_embed_bkg_spatial_size": [4, 4]},
        "neck": {"d_model": 32, "backbone_channel_list": [128, 64, 32, 16],
                 "position_encoding": {"num_pos_feats": 32}},
    },
    "memory_attention": {
        "d_model": 32, "num_layers": 1,
        "layer": {"d_model": 32, "dim_feedforward": 64,
                  "self_attention": {"embedding_dim": 32},
                  "cross_attention": {"embedding_dim": 32, "kv_in_dim": 16}},
    },
    "memory_encoder": {
        "out_dim": 16, "in_dim": 32,
        "position_encoding": {"num_pos_feats": 16},
        "mask_downsampler": {"embed_dim": 32},
        "fuser": {"layer": {"dim": 32}},
    },
}


@dataclass(frozen=True)
class Sam2Arch:
    """One buildable SAM 2 architecture.

    Attributes:
        release: ``sam2`` (2.0, July 2024) or ``sam2.1`` (September 2024).
        config: the packaged config file under ``sam2/configs/<release>/``.
        default_img_size: input side (px) the official weights were trained at.
        tiny: apply the project's tiny overrides (random weights only).
    """

    release: str
    config: str
    default_img_size: int = 1024
    tiny: bool = False


ARCHS: dict[str, Sam2Arch] = {
    **{f"sam2.1_hiera_{v}": Sam2Arch("sam2.1", f"sam2.1_hiera_{v}.yaml") for v in "tsl"},
    "sam2.1_hiera_b+": Sam2Arch("sam2.1", "sam2.1_hiera_b+.yaml"),
    **{f"sam2_hiera_{v}": Sam2Arch("sam2", f"sam2_hiera_{v}.yaml") for v in "tsl"},
    "sam2_hiera_b+": Sam2Arch("sam2", "sam2_hiera_b+.yaml"),
    "tiny": Sam2Arch("sam2.1", "sam2.1_hiera_t.yaml", default_img_size=256, tiny=True),
}


@contextlib.contextmanager
def sam2_hydra_guard() -> Iterator[None]:
    """Run a block that may import sam2; drop the global Hydra instance its import creates.

    ``import sam2`` initialises Hydra's global instance unless one exists. Left behind, it
    makes any later ``hydra.initialize*`` in the process fail ("GlobalHydra is already
    initialized"). A pre-existing instance (another library's) is left untouched.
    """
    from hydra.core.global_hydra import GlobalHydra

    was_initialized = GlobalHydra.instance().is_initialized()
    try:
        yield
    finally:
        if not was_initialized and GlobalHydra.instance().is_initialized():
            GlobalHydra.instance().clear()


def import_sam2(module: str = "sam2") -> Any:
    """Import a sam2 module (e.g. ``sam2.sam2_image_predictor``) under :func:`sam2_hydra_guard`."""
    if module != "sam2" and not module.startswith("sam2."):
        raise ValueError(f"not a sam2 module: {module!r}")
    with sam2_hydra_guard():
        return importlib.import_module(module)


def get_arch(arch: str) -> Sam2Arch:
    """The :class:`Sam2Arch` named ``arch``; a clear error for an unknown name."""
    if arch not in ARCHS:
        raise ValueError(f"unknown SAM 2 architecture {arch!r}; known: {sorted(ARCHS)}")
    return ARCHS[arch]


def model_config(arch: str, img_size: int) -> DictConfig:
    """The ``model`` node of ``arch``'s packaged config, set to ``img_size`` px input.

    Args:
        arch: a key of :data:`ARCHS`.
        img_size: input side in px, a multiple of 32.

    Returns:
        A DictConfig with ``_target_: sam2.modeling.sam2_base.SAM2Base``.
    """
    a = get_arch(arch)
    if img_size <= 0 or img_size % IMG_MULTIPLE:
        raise ValueError(f"SAM 2 img_size must be a positive multiple of {IMG_MULTIPLE}, "
                         f"got {img_size}")
    resource = importlib.resources.files("sam2") / "configs" / a.release / a.config
    with importlib.resources.as_file(resource) as path:
        cfg = OmegaConf.load(path).model
    if a.tiny:
        cfg = OmegaConf.merge(cfg, _TINY_OVERRIDES)
    feat = img_size // 16  # stride of the image embedding the decoder and memory work on
    cfg.image_size = img_size
    cfg.image_encoder.neck.position_encoding.image_size = img_size
    for attn in ("self_attention", "cross_attention"):
        cfg.memory_attention.layer[attn].feat_sizes = [feat, feat]
    return cfg


def build_sam2_base(arch: str, img_size: int) -> torch.nn.Module:
    """Build a whole ``SAM2Base`` with random weights (eval mode, CPU).

    Args:
        arch: a key of :data:`ARCHS` (``sam2.1_hiera_t`` … ``sam2.1_hiera_l``, the 2.0
            ``sam2_hiera_*`` and ``tiny``).
        img_size: input side in px (multiple of 32); the prompt encoder and the image
            embedding (``img_size / 16`` a side) follow it. Hiera interpolates its own
            position embedding at run time, so official weights fit any size.

    Returns:
        The ``sam2.modeling.sam2_base.SAM2Base`` module.
    """
    from hydra.utils import instantiate

    with sam2_hydra_guard():  # _target_ imports sam2 on first use
        model = instantiate(model_config(arch, img_size), _recursive_=True)
    log.debug("built %s at %d px: %s parameters", arch, img_size,
              f"{sum(p.numel() for p in model.parameters()):,}")
    return model.eval()


def _listed(keys: set[str]) -> str:
    names = sorted(keys)
    more = f" … and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return ", ".join(names[:MAX_LISTED]) + more


def _release_hint(missing: set[str], unexpected: set[str], release: str) -> str:
    """Name the release mix-up when the key difference is exactly the 2.0/2.1 one."""
    if release == "sam2.1" and missing and missing <= SAM21_ONLY_KEYS and not unexpected:
        return (" This is a SAM 2 (2.0) checkpoint but the backbone is a SAM 2.1 "
                "architecture: use the sam2.1_*.pt file (or a sam2_hiera_* arch).")
    if release == "sam2" and unexpected and unexpected <= SAM21_ONLY_KEYS and not missing:
        return (" This is a SAM 2.1 checkpoint but the backbone is a SAM 2 (2.0) "
                "architecture: use the sam2_*.pt file (or a sam2.1_hiera_* arch).")
    return ""


def read_sam2_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read an official SAM 2 checkpoint: ``{"model": state_dict}``, ``weights_only=True``.

    Raises:
        RuntimeError: the file does not hold a ``model`` mapping of tensors.
    """
    ckpt = torch_load_safe(path, "a SAM 2 checkpoint", "replace it with the official file "
                           "(see backbones.<id>.checkpoint in params.yaml)")
    sd = ckpt.get("model") if isinstance(ckpt, Mapping) else None
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise RuntimeError(f"{path}: not a SAM 2 checkpoint (expected a dict whose 'model' "
                           "entry is a state_dict of tensors)")
    return dict(sd)


def load_sam2_weights(model: torch.nn.Module, path: Path, arch: str) -> None:
    """Load an official SAM 2 / 2.1 checkpoint into a whole ``SAM2Base``, strictly.

    Every key and shape must match. A checkpoint of the other release (2.0 into a 2.1
    architecture or the reverse) is recognised by the 2.1-only entries
    (:data:`SAM21_ONLY_KEYS`) and the error says so.

    Args:
        model: built by :func:`build_sam2_base` (before any LoRA injection).
        path: the ``.pt`` file (size and SHA-256 already verified by ``fetch_checkpoint``).
        arch: the architecture ``model`` was built as (for its release).

    Raises:
        RuntimeError: listing missing / unexpected keys or mismatched shapes.
    """
    path = Path(path)
    sd = read_sam2_state_dict(path)
    expected = model.state_dict()
    missing, unexpected = set(expected) - set(sd), set(sd) - set(expected)
    release = get_arch(arch).release
    if missing or unexpected:
        raise RuntimeError(
            f"{path}: checkpoint does not match the {RELEASE_NAMES[release]} model {arch}: "
            f"{len(missing)} missing keys [{_listed(missing)}], {len(unexpected)} unexpected "
            f"keys [{_listed(unexpected)}].{_release_hint(missing, unexpected, release)}"
        )
    bad = [f"{k}: checkpoint {tuple(sd[k].shape)}, model {tuple(t.shape)}"
           for k, t in expected.items() if sd[k].shape != t.shape]
    if bad:
        raise RuntimeError(f"{path}: shape mismatch for {len(bad)} tensors (wrong "
                           f"architecture for {arch}?): {bad[:MAX_LISTED]}")
    model.load_state_dict(sd, strict=True)
    log.info("loaded %d tensors from %s into %s", len(sd), path, arch)
