"""fetch_checkpoint and load_sam_weights on checkpoints written here in the official layout."""

from __future__ import annotations

import hashlib
import io
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import torch

from samlora.utils.io import UnreadableCheckpointError

from samlora.data.errors import DownloadError
from samlora.models.checkpoints import ChecksumError, fetch_checkpoint, load_sam_weights
from samlora.models.sam import build_sam
from samlora.models.segmenter import build_segmenter
from samlora.utils.io import sha256_file


def _official_layout(sam: torch.nn.Module, path: Path) -> dict[str, Any]:
    """Save ``sam`` as the official .pth is (a plain state_dict); return its params spec."""
    torch.save(sam.state_dict(), path)
    return {"file": path.name, "url": path.as_uri(), "bytes": path.stat().st_size,
            "sha256": sha256_file(path)}


@pytest.fixture
def tiny_ckpt(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    torch.manual_seed(1)
    src = tmp_path / "src"
    src.mkdir()
    path = src / "sam_tiny.pth"
    return path, _official_layout(build_sam("tiny", 256), path)


def test_existing_file_is_verified(tiny_ckpt: tuple[Path, dict], tmp_path: Path) -> None:
    path, spec = tiny_ckpt
    assert fetch_checkpoint(spec, path.parent) == path


def test_size_mismatch_is_an_error(tiny_ckpt: tuple[Path, dict]) -> None:
    path, spec = tiny_ckpt
    with pytest.raises(ChecksumError, match=f"expected {spec['bytes'] + 1:,}"):
        fetch_checkpoint({**spec, "bytes": spec["bytes"] + 1}, path.parent)


def test_sha_mismatch_is_an_error(tiny_ckpt: tuple[Path, dict]) -> None:
    path, spec = tiny_ckpt
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=spec["sha256"]) as err:
        fetch_checkpoint(spec, path.parent)
    assert sha256_file(path) in str(err.value)


def test_download_verifies_then_renames(tiny_ckpt: tuple[Path, dict], tmp_path: Path) -> None:
    _, spec = tiny_ckpt
    models = tmp_path / "models"
    got = fetch_checkpoint(spec, models)
    assert got == models / spec["file"] and sha256_file(got) == spec["sha256"]
    assert not list(models.glob("*.part"))


def test_corrupt_download_is_dropped(tiny_ckpt: tuple[Path, dict], tmp_path: Path) -> None:
    _, spec = tiny_ckpt
    models = tmp_path / "models"
    with pytest.raises(ChecksumError):
        fetch_checkpoint({**spec, "sha256": "0" * 64}, models)
    assert list(models.iterdir()) == []


def test_no_network_says_where_to_put_the_file(tiny_ckpt: tuple[Path, dict], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _, spec = tiny_ckpt

    def offline(*args: Any, **kwargs: Any) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    spec = {**spec, "url": "https://dl.fbaipublicfiles.com/segment_anything/x.pth"}
    with pytest.raises(RuntimeError, match="put it at") as err:
        fetch_checkpoint(spec, tmp_path / "models")
    assert str(tmp_path / "models" / spec["file"]) in str(err.value)
    assert spec["url"] in str(err.value)


class _Server(ThreadingHTTPServer):
    files: dict[str, bytes]
    cut: set[str]  # paths whose body stops halfway (Content-Length promises all of it)
    requests: list[tuple[str, str | None, int]]  # (path, Range header, status)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        data, rng = self.server.files.get(self.path), self.headers.get("Range")
        status, body, start = (404, b"", 0) if data is None else (200, data, 0)
        if data is not None and rng:
            start = int(re.match(r"bytes=(\d+)-", rng).group(1))
            status, body = 206, data[start:]
        self.server.requests.append((self.path, rng, status))
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.path in self.server.cut else body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.files, srv.cut, srv.requests = {}, set(), []
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture()
def served(server: _Server) -> tuple[_Server, dict[str, Any]]:
    """A small fake checkpoint served at /sam/fake.pth, and its params spec."""
    buf = io.BytesIO()
    torch.save({"w": torch.arange(50_000, dtype=torch.float32)}, buf)
    data = buf.getvalue()
    server.files["/sam/fake.pth"] = data
    url = f"http://127.0.0.1:{server.server_address[1]}/sam/fake.pth"
    return server, {"file": "fake.pth", "url": url, "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest()}


def test_http_download(served: tuple[_Server, dict], tmp_path: Path) -> None:
    server, spec = served
    got = fetch_checkpoint(spec, tmp_path / "models")
    assert got == tmp_path / "models/fake.pth" and sha256_file(got) == spec["sha256"]
    assert torch.load(got, weights_only=True)["w"][-1] == 49_999
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["fake.pth"]
    assert fetch_checkpoint(spec, tmp_path / "models") == got  # verified, not fetched again
    assert len(server.requests) == 1


def test_http_404_names_url_and_file(served: tuple[_Server, dict], tmp_path: Path) -> None:
    _, spec = served
    spec = {**spec, "url": spec["url"].replace("fake.pth", "moved.pth")}
    with pytest.raises(DownloadError) as err:
        fetch_checkpoint(spec, tmp_path / "models")
    msg = str(err.value)
    assert isinstance(err.value, RuntimeError) and not isinstance(err.value, ChecksumError)
    assert msg.startswith(f"{spec['url']}: HTTP 404") and "\n" not in msg
    assert f"put it at {tmp_path / 'models/fake.pth'}" in msg
    assert list((tmp_path / "models").iterdir()) == []


def test_dropped_connection_keeps_the_part_and_resumes(served: tuple[_Server, dict],
                                                       tmp_path: Path) -> None:
    server, spec = served
    server.cut.add("/sam/fake.pth")
    part = tmp_path / "models/fake.pth.part"
    with pytest.raises(DownloadError) as err:
        fetch_checkpoint(spec, tmp_path / "models")
    msg = str(err.value)
    assert not isinstance(err.value, ChecksumError)
    assert msg.startswith(f"{spec['url']}: connection dropped after {spec['bytes'] // 2:,} of "
                          f"{spec['bytes']:,} bytes") and "\n" not in msg
    assert f"resume from {part}" in msg and f"put it at {tmp_path / 'models/fake.pth'}" in msg
    assert part.stat().st_size == spec["bytes"] // 2 and not part.with_suffix("").exists()
    server.cut.clear()  # the rerun asks for the rest only
    assert sha256_file(fetch_checkpoint(spec, tmp_path / "models")) == spec["sha256"]
    assert server.requests[-1] == ("/sam/fake.pth", f"bytes={spec['bytes'] // 2}-", 206)
    assert not part.exists()


def test_load_round_trip_and_sha(tiny_ckpt: tuple[Path, dict]) -> None:
    path, spec = tiny_ckpt
    saved = torch.load(path, weights_only=True)
    torch.manual_seed(2)
    sam = build_sam("tiny", 256)
    load_sam_weights(sam, path, expected_sha256=spec["sha256"])
    for key, value in sam.state_dict().items():
        assert torch.equal(value, saved[key]), key
    with pytest.raises(ChecksumError):
        load_sam_weights(sam, path, expected_sha256="f" * 64)


def test_load_is_strict_and_lists_keys(tiny_ckpt: tuple[Path, dict], tmp_path: Path) -> None:
    path, _ = tiny_ckpt
    sd = torch.load(path, weights_only=True)
    sd["extra.weight"] = sd.pop("mask_decoder.iou_token.weight")
    bad = tmp_path / "bad.pth"
    torch.save(sd, bad)
    with pytest.raises(RuntimeError, match="missing keys") as err:
        load_sam_weights(build_sam("tiny", 256), bad)
    assert "mask_decoder.iou_token.weight" in str(err.value)
    assert "extra.weight" in str(err.value)


def test_load_refuses_pickled_objects(tmp_path: Path) -> None:
    bad = tmp_path / "pickle.pth"
    torch.save({"model": Path("x")}, bad)  # an arbitrary class: weights_only must refuse it
    with pytest.raises(UnreadableCheckpointError, match="pickle of arbitrary Python objects") \
            as err:
        load_sam_weights(build_sam("tiny", 256), bad)
    assert str(bad) in str(err.value) and "weights_only=False" not in str(err.value)


def test_load_resizes_position_embeddings(tiny_ckpt: tuple[Path, dict]) -> None:
    path, _ = tiny_ckpt
    saved = torch.load(path, weights_only=True)
    sam = build_sam("tiny", 128)  # 8×8 embedding instead of 16×16
    load_sam_weights(sam, path)
    sd = sam.state_dict()
    assert sd["image_encoder.pos_embed"].shape == (1, 8, 8, 64)
    assert sd["image_encoder.blocks.1.attn.rel_pos_h"].shape == (15, 32)
    assert torch.equal(sd["image_encoder.blocks.0.mlp.lin1.weight"],
                       saved["image_encoder.blocks.0.mlp.lin1.weight"])


def test_other_shape_mismatch_is_an_error(tiny_ckpt: tuple[Path, dict], tmp_path: Path) -> None:
    path, _ = tiny_ckpt
    sd = torch.load(path, weights_only=True)
    sd["mask_decoder.iou_token.weight"] = torch.zeros(1, 7)
    bad = tmp_path / "bad_shape.pth"
    torch.save(sd, bad)
    with pytest.raises(RuntimeError, match="shape mismatch.*iou_token"):
        load_sam_weights(build_sam("tiny", 256), bad)


def test_vit_b_official_layout_through_build_segmenter(tmp_path: Path, vit_b_backbone: dict,
                                                       topolora_cfg: dict) -> None:
    """vit_b saved as the official file is: fetched (verified), loaded, then LoRA-wrapped."""
    torch.manual_seed(3)
    spec = _official_layout(build_sam("vit_b", 1024), tmp_path / "sam_vit_b_01ec64.pth")
    saved = torch.load(tmp_path / spec["file"], weights_only=True)
    model = build_segmenter(topolora_cfg, {**vit_b_backbone, "checkpoint": spec},
                            models_dir=tmp_path)
    sd = model.state_dict()
    for key in ("image_encoder.blocks.5.mlp.lin1.weight", "mask_decoder.iou_token.weight",
                "image_encoder.pos_embed"):
        wrapped = key.replace("lin1.weight", "lin1.base_layer.weight")
        assert torch.equal(sd[f"sam.{wrapped}"], saved[key]), key
    assert "sam.image_encoder.blocks.5.mlp.lin1.lora_A.default.weight" in sd
