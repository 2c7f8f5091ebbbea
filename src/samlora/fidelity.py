"""Every known difference between samlora and each paper's reference code, in one table.

Each :class:`Difference` names what the paper says, what its code does (file), what samlora
does by default (``corrected``), the params key that switches it, and the value that key
takes under ``fidelity: reference``. A study's method entry ``{base: <method>, fidelity:
reference}`` (or a study-wide ``fidelity: reference``) trains the method with every
``reference`` value of its paper applied (:func:`reference_overrides`); ``corrected`` (the
default) keeps params.yaml's values. ``python -m samlora fidelity`` prints the table.

``status`` says how far a row is implemented: ``switch`` (a key with both behaviours and a
test of the reference one), ``evaluation`` (an evaluation mode reproduces it,
:mod:`samlora.evaluation.modes`), ``data`` (a ``data.*`` setting: it changes the prepared
data of every study, so ``fidelity: reference`` cannot apply it per method), ``choice`` (a
default we choose differently and state in params.yaml; the key follows the paper when set,
and ``fidelity: reference`` leaves it, so the fidelity studies compare code semantics at one
model size), ``documented`` (a reference-code defect we do not reproduce) or ``open`` (not
switchable yet). ``only`` limits a row to methods on the named backbone ids or families.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TOPOLORA = "TopoLoRA-SAM"
SAM2LORA = "SAM2LoRA"
PAPERS = (TOPOLORA, SAM2LORA)
FIDELITY = ("corrected", "reference")
STATUSES = ("switch", "evaluation", "data", "choice", "documented", "open")
#: Method-config sections a reference value may set.
SECTIONS = ("loss", "adapter", "train", "lora", "prompts", "multimask", "geometry", "backbone")
#: TopoLoRA-SAM's code: every model sees 384² inputs (512² on Kvasir-SEG and SL-SSDD).
SEGLAB_GEOMETRY = {"resize": "stretch", "size": 384,
                   "size_by_dataset": {"kvasir_seg": 512, "sl_ssdd": 512}}


@dataclass(frozen=True)
class Difference:
    """One row of the fidelity table (see the module docstring)."""

    paper: str
    name: str
    text: str
    code: str
    corrected: str
    switch: str
    reference: Any = None
    status: str = "switch"
    only: tuple[str, ...] = ()


def _d(*args: Any, **kwargs: Any) -> Difference:
    return Difference(*args, **kwargs)


DIFFERENCES: tuple[Difference, ...] = (
    # ---- TopoLoRA-SAM vs Seglab -------------------------------------------------------
    _d(TOPOLORA, "clDice soft skeleton", "soft skeleton with k iterations",
       "seglab/models/sam_peft/topo_losses.py: exactly `iters` openings; Tprec, Tsens with "
       "ε 1e-6 in the denominators; (2·Tp·Ts + ε)/(Tp + Ts + ε)",
       "iters + 1 openings; +1 smoothing in Tprec/Tsens (an all-background prediction "
       "costs ≈1.0; the code's form gives ≈0.002, rewarding empty output)",
       "loss.cldice_form", "seglab"),
    _d(TOPOLORA, "soft Dice smoothing", "Dice loss", "topo_losses.py dice_loss: ε 1e-6",
       "smooth 1", "loss.dice_smooth", 1e-6),
    _d(TOPOLORA, "adapter initialisation", "not stated",
       "seglab/models/sam_peft/adapters.py: PyTorch default init of every conv",
       "last 1×1 conv zero (the adapter starts as the identity)", "adapter.init", "default"),
    _d(TOPOLORA, "adapter form", "z + Conv1×1(ReLU(DWConv3×3(z))), ~66K parameters",
       "adapters.py: DWConv3×3 → 1×1 → BN → GELU → 1×1, 133,888 at width 256",
       "the code's form (the paper's text form is adapter.variant: text)",
       "adapter.variant", "code"),
    _d(TOPOLORA, "weight decay", "AdamW", "configs/base.yaml: weight_decay 1e-4", "0.01",
       "train.weight_decay", 1e-4),
    _d(TOPOLORA, "learning-rate schedule", "cosine annealing",
       "CosineAnnealingLR(T_max = epochs), stepped per epoch, down to 0",
       "per optimiser step, warmup then cosine to train.min_lr", "train.schedule",
       "cosine_epoch"),
    _d(TOPOLORA, "mixed precision", "not stated",
       "Lightning precision 16-mixed (Lightning runs bf16-mixed on CPU)", "fp32",
       "train.precision", "amp"),
    _d(TOPOLORA, "augmentation and training geometry", "flips, 384 training crops",
       "seglab/data/transforms.py: RandomScale 0.8–1.2, PadIfNeeded, random 384 crop "
       "(512 on Kvasir-SEG/SL-SSDD), flips, ColorJitter p 0.2; the crop is upsampled to "
       "1024 in the model",
       "the whole image, longest side to the model size, padded; flips + rot90",
       "train.augment", {"pipeline": "topolora_ref", "crop": None}),
    _d(TOPOLORA, "validation and test geometry; baselines' input size",
       "384 retina, 512 Kvasir/SL-SSDD",
       "Resize(384, 384) without keeping the aspect ratio (512² Kvasir-SEG/SL-SSDD); SAM "
       "upsamples to 1024, the baselines run at that size",
       "longest side to the model size, padded (baselines 512 everywhere); predictions "
       "mapped back and scored at native size", "geometry", SEGLAB_GEOMETRY),
    _d(TOPOLORA, "baselines' batch", "batch 4", "batch 4, no accumulation",
       "1 × 4 accumulation for every method (matters for BatchNorm)",
       "train.batch_size, train.grad_accum", {"train.batch_size": 4, "train.grad_accum": 1},
       only=("baseline",)),
    _d(TOPOLORA, "SegFormer weights", "SegFormer-B0",
       "nvidia/segformer-b0-finetuned-ade-512-512 (encoder and decode head)",
       "nvidia/mit-b0 (ImageNet encoder, new decode head)", "backbone", "segformer_b0_ade",
       only=("segformer_b0",)),
    _d(TOPOLORA, "Mask2Former reduction", "Mask2Former",
       "num_labels=1, 1 − Π_q(1 − p_q·σ(m_q))", "2 labels, fg/bg log-ratio", "backbone",
       "mask2former_swin_t_noisy_or", only=("mask2former_swin_t",)),
    _d(TOPOLORA, "LoRA + adapter without clDice", "cross-dataset runs",
       "the cross-dataset experiment trains λ = 0", "a named method of its own",
       "methods.topolora_sam_no_cldice", None),
    _d(TOPOLORA, "evaluation", "Dice, IoU, BFScore, clDice, ECE",
       "pooled micro metrics at 384², no FOV", "native size, FOV, per image",
       "evaluate.modes: topolora_ref", None, "evaluation"),
    # ---- SAM2LoRA vs its code -----------------------------------------------------------
    _d(SAM2LORA, "backbone and rank", "Hiera-L, r up to 1024 in the ablation",
       "train.py: sam2.1_hiera_large, r 64, α 128",
       "Hiera-B+, r 8 (a default sized for one GPU; the studies sweep r 32–1024)",
       "methods.sam2lora.backbone, lora.r, lora.alpha",
       {"backbone": "sam2_hiera_l", "lora.r": 64, "lora.alpha": 128}, "choice"),
    _d(SAM2LORA, "LoRA dropout", "not stated",
       "model/lora_adapters.py: dropout 0.1 on the LoRA branch's output, B(A(x))",
       "0; with lora.dropout peft drops the branch's input, B(A(dropout(x))): the same "
       "rate, not the same noise (samlora keeps peft's layers rather than hand-written ones)",
       "lora.dropout", 0.1),
    _d(SAM2LORA, "LoRA A initialisation", "not stated",
       "lora_adapters.py: A ~ N(0, 1)/√r, B = 0", "peft's Kaiming-uniform A, B = 0",
       "lora.init", "gaussian_sqrt_r"),
    _d(SAM2LORA, "decoder output", "not stated",
       "multimask_output=True, the first of the three masks, in training and evaluation",
       "single-mask output", "multimask", "first"),
    _d(SAM2LORA, "training prompts", "point prompts from the mask",
       "200 positives drawn with replacement from the mask eroded by a 2×2 square",
       "without replacement, from the mask eroded by disk(1)",
       "prompts.replacement, prompts.erode",
       {"prompts.replacement": True, "prompts.erode": "square2"}),
    _d(SAM2LORA, "point sampling at test", "density-weighted points",
       "utils: density region (shrinking 15×15 erosions, ≥ 0.9 of the maximum)",
       "uniform over the eroded mask", "prompts.sampling", "density"),
    _d(SAM2LORA, "5pt+1neg prompt", "5 positive and 1 negative point",
       "num_neg_points defaults to 0: no negative is drawn", "one negative in the FOV",
       "prompts.negatives", False),
    _d(SAM2LORA, "augmentation", "not stated",
       "train.py: flips, then p 0.5 perspective, RandomResizedCrop 1000², rotation 8°, "
       "affine; p 0.5 colour jitter, blur, sharpness",
       "flips + rot90", "train.augment", {"pipeline": "sam2lora_ref"}),
    _d(SAM2LORA, "mixed precision", "not stated", "torch AMP", "fp32", "train.precision",
       "amp"),
    _d(SAM2LORA, "splits", "random splits",
       "sklearn train_test_split of the globbed files, random_state 0 (CHASE 8 test, HRF "
       "13, STARE 5, ORIGA 163, G1020 255, GRAPE 158, PAPILA 122)",
       "official / conventional splits (the variant draws from the sorted ids: glob order "
       "is the file system's)", "data.split_variants.<dataset>", "sam2lora_random", "data"),
    _d(SAM2LORA, "evaluation", "IoU, AUC, Dice, HD95, ...",
       "1024² without aspect, no FOV, union of annotators", "native size, FOV, per image",
       "evaluate.modes: sam2lora_ref", None, "evaluation"),
    _d(SAM2LORA, "batch decoding", "—",
       "every image of a batch is decoded against the last image's embedding",
       "each image against its own embedding", "—", None, "documented"),
    _d(SAM2LORA, "unregistered LoRA factors", "—",
       "nn.Parameter(...).to(device) is not a registered parameter when built off-device",
       "peft's registered parameters", "—", None, "documented"),
)


def differences(paper: str | None = None) -> list[Difference]:
    """The rows of ``paper`` (every row when None)."""
    if paper is not None and paper not in PAPERS:
        raise ValueError(f"fidelity: unknown paper {paper!r}; known: {list(PAPERS)}")
    return [d for d in DIFFERENCES if paper is None or d.paper == paper]


def reference_overrides(paper: str, backbone: str | None = None,
                        family: str | None = None) -> dict[str, Any]:
    """Dotted method-config keys → values that make a method of ``paper`` on ``backbone``
    (id) of ``family`` train as its code does: the ``switch`` rows with a reference value
    (rows with ``only`` apply where the id or family is listed; several keys expand)."""
    out: dict[str, Any] = {}
    for d in differences(paper):
        if d.status != "switch" or d.reference is None:
            continue
        if d.only and backbone not in d.only and family not in d.only:
            continue
        if "," in d.switch:  # several keys: the value maps each dotted key to its value
            out.update(dict(d.reference))
        else:  # one key, whose value may itself be a block (train.augment)
            out[d.switch] = d.reference
    return out


def table_rows(paper: str | None = None) -> list[dict[str, str]]:
    """The table as rows of strings, for printing and for the README."""
    return [{"paper": d.paper, "difference": d.name, "paper text": d.text,
             "reference code": d.code, "samlora (corrected)": d.corrected,
             "switch": d.switch,
             "reference value": "" if d.reference is None else str(d.reference),
             "status": d.status} for d in differences(paper)]


def markdown_table(paper: str | None = None) -> str:
    """The table in markdown, as the README shows it (a test keeps the two in step)."""
    cols = ["paper", "difference", "paper text", "reference code", "samlora (corrected)", "switch",
            "reference value", "status"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table_rows(paper):
        cells = [row[c].replace("|", "\\|") for c in cols]
        cells[5] = f"`{cells[5]}`" if cells[5] not in ("", "—") else cells[5]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
