"""train.precision: autocast, loss scaling and clipping, against the plain torch recipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from samlora.training.precision import Precision, resolve
from samlora.training.prompted import model_step

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_resolve_picks_the_papers_precision_per_device_and_refuses_bad_values() -> None:
    assert resolve("fp32", CPU) == "fp32" and resolve("bf16", CPU) == "bf16"
    assert resolve("amp", CPU) == "bf16"          # what Lightning falls back to on CPU
    assert resolve("amp", CUDA) == "fp16-mixed"
    assert resolve("fp16-mixed", CUDA) == "fp16-mixed"
    with pytest.raises(ValueError, match=r"train.precision: fp16-mixed needs a CUDA device"):
        resolve("fp16-mixed", CPU)
    with pytest.raises(ValueError, match=r"train.precision: 'fp8' is not one of"):
        resolve("fp8", CPU)


class _Net(nn.Module):
    """A conv net whose forward records the dtype its first layer computed in."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 1, 1)
        self.seen: list[torch.dtype] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x)
        self.seen.append(h.dtype)
        return self.conv2(torch.relu(h))


def _batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(2, 3, 16, 16, generator=g),
            "mask": (torch.rand(2, 1, 16, 16, generator=g) > 0.5).float()}


def _bce(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
    assert logits.dtype == torch.float32  # the loss always sees float32
    return nn.functional.binary_cross_entropy_with_logits(logits, target), {}


@pytest.mark.parametrize("name", ["fp32", "bf16"])
def test_one_step_equals_the_plain_torch_recipe(name: str) -> None:
    """Autocast forward, float32 loss, clip, AdamW step: bit for bit the obvious loop."""
    torch.manual_seed(0)
    ours, plain = _Net(), _Net()
    plain.load_state_dict(ours.state_dict())
    opt_a = torch.optim.AdamW(ours.parameters(), lr=1e-2)
    opt_b = torch.optim.AdamW(plain.parameters(), lr=1e-2)
    prec = Precision(name, CPU)
    for seed in range(3):
        batch = _batch(seed)
        loss, _, _ = model_step(ours, batch, _bce, CPU, None, prec.autocast)
        prec.backward(loss)
        prec.step(opt_a, list(ours.parameters()), clip=0.5)
        opt_a.zero_grad()
        if name == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = plain(batch["image"])
        else:
            out = plain(batch["image"])
        ref = nn.functional.binary_cross_entropy_with_logits(out.float(), batch["mask"])
        ref.backward()
        nn.utils.clip_grad_norm_(list(plain.parameters()), 0.5)
        opt_b.step()
        opt_b.zero_grad()
        assert loss.item() == ref.item()
    for (k, a), b in zip(ours.state_dict().items(), plain.state_dict().values()):
        assert torch.equal(a, b), k
    want = torch.bfloat16 if name == "bf16" else torch.float32
    assert ours.seen == [want] * 3


def test_bf16_changes_the_arithmetic_but_not_the_result_much() -> None:
    torch.manual_seed(0)
    net = _Net()
    batch = _batch()
    fp32, _, _ = model_step(net, batch, _bce, CPU)
    bf16, _, _ = model_step(net, batch, _bce, CPU, None, Precision("bf16", CPU).autocast)
    assert fp32.item() != bf16.item()
    assert abs(fp32.item() - bf16.item()) < 2e-2 * abs(fp32.item())


def test_cpu_precisions_keep_no_scaler_state() -> None:
    for name in ("fp32", "bf16", "amp"):
        prec = Precision(name, CPU)
        assert prec.scaler is None and prec.state_dict() == {}
        prec.load_state_dict({})  # a checkpoint without scaler state is fine


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp16_mixed_matches_the_gradscaler_recipe_and_resumes_its_scale() -> None:
    torch.manual_seed(0)
    ours, plain = _Net().cuda(), _Net().cuda()
    plain.load_state_dict(ours.state_dict())
    opt_a = torch.optim.AdamW(ours.parameters(), lr=1e-2)
    opt_b = torch.optim.AdamW(plain.parameters(), lr=1e-2)
    prec, scaler = Precision("fp16-mixed", CUDA), torch.amp.GradScaler("cuda")
    for seed in range(3):
        batch = _batch(seed)
        loss, _, _ = model_step(ours, batch, _bce, CUDA, None, prec.autocast)
        prec.backward(loss)
        prec.step(opt_a, list(ours.parameters()), clip=0.5)
        opt_a.zero_grad()
        with torch.autocast("cuda", dtype=torch.float16):
            out = plain(batch["image"].cuda())
        ref = nn.functional.binary_cross_entropy_with_logits(out.float(), batch["mask"].cuda())
        scaler.scale(ref).backward()
        scaler.unscale_(opt_b)
        nn.utils.clip_grad_norm_(list(plain.parameters()), 0.5)
        scaler.step(opt_b)
        scaler.update()
        opt_b.zero_grad()
    for a, b in zip(ours.parameters(), plain.parameters()):
        assert torch.equal(a, b)
    again = Precision("fp16-mixed", CUDA)
    again.load_state_dict(prec.state_dict())
    assert again.scaler.get_scale() == prec.scaler.get_scale()


def _train_cmd(repo_root: Path, processed: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "samlora", "train",
            "--params", str(repo_root / "params.yaml"),
            "--params", str(repo_root / "presets/demo.yaml"),
            "--method", "topolora_sam_tiny", "--train-set", "drive", "--seed", "0", "--out", str(out),
            f"data.processed_dir={processed}", "train.epochs=1", "train.num_workers=0",
            "backbones.sam_tiny.img_size=64", "train.batch_size=4", *extra]


@pytest.fixture(scope="module")
def processed(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from samlora.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("processed")
    prepare_dataset("drive", mirror / "DRIVE", out / "drive", {"red_threshold": 0.1, "radius": 3})
    return out


def test_a_bf16_run_records_its_precision_and_fp16_on_cpu_is_refused(
        repo_root: Path, processed: Path, tmp_path: Path) -> None:
    from safetensors import safe_open

    run = tmp_path / "amp"
    subprocess.run(_train_cmd(repo_root, processed, run, "train.precision=amp"), check=True,
                   cwd=tmp_path, capture_output=True, timeout=300)
    with safe_open(str(run / "adapter.safetensors"), framework="pt") as f:
        assert f.metadata()["precision"] == "bf16"
    bad = subprocess.run(_train_cmd(repo_root, processed, tmp_path / "fp16",
                                    "train.precision=fp16-mixed"),
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0
    assert "train.precision: fp16-mixed needs a CUDA device" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (tmp_path / "fp16" / "last.pt").exists()
