"""The README's bad-input catalogue, walked row by row through the CLI.

Each row of the table under "## When something is wrong" names a case and the line the
user sees. Every row has a scenario here that produces the case on real files (DRIVE from
the mirror, archives and checkpoints built in the test) and runs the step a user would
run, in-process through ``samlora.cli.main``. The line logged must match the row (``<…>``
stands for any text, such as a path), be a single line, and come with exit code 2. A row
without a scenario, or a scenario without a row, fails the test: the table and the
behaviour cannot drift apart.
"""

from __future__ import annotations

import errno
import io
import logging
import re
import shutil
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
import yaml

from samlora import cli

REPO = Path(__file__).resolve().parents[1]
HEADING = "## When something is wrong"


def catalogue_rows() -> dict[str, str]:
    """``{case: message}`` of the README's catalogue table."""
    text = (REPO / "README.md").read_text()
    assert HEADING in text, f"README.md has no section {HEADING!r}"
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] \
            if line.startswith("|") else []
        if len(cells) != 2 or set(cells[0]) <= {"-", ":", " "} or cells[0] == "case":
            continue
        case, message = cells
        assert message.startswith("`") and message.endswith("`"), line
        assert case not in rows, f"case {case!r} listed twice"
        rows[case] = message.strip("`").replace("\\|", "|")
    return rows


def pattern(message: str) -> re.Pattern[str]:
    """The row's message as a regex: ``<…>`` placeholders match any text."""
    parts = re.split(r"<[^<>]+>", message)
    return re.compile(".+?".join(re.escape(p) for p in parts), re.DOTALL)


@dataclass
class Env:
    """A scratch project: its own raw, processed and run folders, and a DRIVE copy."""

    root: Path
    mirror: Path
    prepared: Path
    monkeypatch: pytest.MonkeyPatch
    params: list[str] = field(default_factory=list)

    def overrides(self, mirror: Path | None = None) -> list[str]:
        return [f"data.mirror={mirror or self.mirror}", f"data.raw_dir={self.root / 'raw'}",
                f"data.processed_dir={self.root / 'processed'}"]

    def drive_copy(self) -> Path:
        dest = self.root / "mirror" / "DRIVE"
        shutil.copytree(self.mirror / "DRIVE", dest)
        return dest

    def run(self, step: str, *args: str, overrides: list[str] | None = None) -> list[str]:
        argv = [step, "--params", str(REPO / "params.yaml"), *self.params, *args,
                *(self.overrides() if overrides is None else overrides)]
        return argv


SCENARIOS: dict[str, Callable[[Env], list[str]]] = {}


def scenario(case: str) -> Callable:
    def wrap(fn: Callable[[Env], list[str]]) -> Callable[[Env], list[str]]:
        SCENARIOS[case] = fn
        return fn
    return wrap


# --- data: images, masks, layouts ----------------------------------------------------------

def _prepare_with(env: Env, root: Path) -> list[str]:
    """Download (from the mirror ``root`` lies in), then the prepare argv to run."""
    assert cli.main(env.run("download", "--dataset", "drive",
                            overrides=env.overrides(root.parent))) == 0
    return env.run("prepare", "--dataset", "drive", overrides=env.overrides(root.parent))


@scenario("corrupt image")
def _corrupt_image(env: Env) -> list[str]:
    root = env.drive_copy()
    (root / "training/images/21_training.tif").write_bytes(b"not an image at all" * 100)
    return _prepare_with(env, root)


@scenario("truncated image")
def _truncated_image(env: Env) -> list[str]:
    root = env.drive_copy()
    path = root / "test/images/01_test.tif"
    path.write_bytes(path.read_bytes()[:5000])
    return _prepare_with(env, root)


@scenario("empty image file")
def _empty_image(env: Env) -> list[str]:
    root = env.drive_copy()
    (root / "training/images/22_training.tif").write_bytes(b"")
    return _prepare_with(env, root)


@scenario("missing mask")
def _missing_mask(env: Env) -> list[str]:
    root = env.drive_copy()
    (root / "training/1st_manual/23_manual1.gif").unlink()
    return env.run("download", "--dataset", "drive", overrides=env.overrides(root.parent))


@scenario("mask size differs from its image")
def _size_mismatch(env: Env) -> list[str]:
    from PIL import Image

    root = env.drive_copy()
    Image.new("L", (100, 80)).save(root / "training/1st_manual/24_manual1.gif")
    return _prepare_with(env, root)


@scenario("empty dataset folder")
def _empty_folder(env: Env) -> list[str]:
    (env.root / "mirror" / "DRIVE").mkdir(parents=True)
    return env.run("download", "--dataset", "drive", overrides=env.overrides(env.root / "mirror"))


@scenario("split file names a case the data lacks")
def _split_case_missing(env: Env) -> list[str]:
    root = env.drive_copy()
    for rel in ("training/images/25_training.tif", "training/1st_manual/25_manual1.gif",
                "training/mask/25_training_mask.gif"):
        (root / rel).unlink()
    return env.run("download", "--dataset", "drive", overrides=env.overrides(root.parent))


@scenario("mirror folder does not exist")
def _mirror_missing(env: Env) -> list[str]:
    return env.run("download", "--dataset", "drive",
                   overrides=env.overrides(env.root / "no-such-share"))


@scenario("unknown dataset")
def _unknown_dataset(env: Env) -> list[str]:
    return env.run("prepare", "--dataset", "nosuch")


@scenario("broken source.json")
def _broken_source(env: Env) -> list[str]:
    path = env.root / "raw" / "drive" / "source.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"root": "/x",\n')
    return env.run("prepare", "--dataset", "drive")


# --- archives ------------------------------------------------------------------------------

def _placed(env: Env, name: str, data: bytes) -> list[str]:
    """Put an archive where DRIVE's placed files go; the download step extracts it."""
    dest = env.root / "raw" / "drive" / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return env.run("download", "--dataset", "drive",
                   overrides=["data.mirror=null", f"data.raw_dir={env.root / 'raw'}"])


def _zip(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, target)
    return buf.getvalue()


def _tar(members: list[tuple[str, bytes, str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, link in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, link
            tf.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


@scenario("corrupt archive")
def _corrupt_archive(env: Env) -> list[str]:
    good = _zip({"DRIVE/training/images/21_training.tif": b"x" * 5000})
    return _placed(env, "DRIVE.zip", good[: len(good) // 2])


@scenario("archive member with '..' (zip-slip)")
def _zip_slip(env: Env) -> list[str]:
    return _placed(env, "DRIVE.zip", _zip({"../evil.txt": b"x"}))


@scenario("archive member with an absolute path")
def _absolute(env: Env) -> list[str]:
    return _placed(env, "DRIVE.tar", _tar([("/tmp/evil.txt", tarfile.REGTYPE, "")]))


@scenario("archive symlink pointing outside")
def _symlink(env: Env) -> list[str]:
    return _placed(env, "DRIVE.zip", _zip({}, {"DRIVE/link": "../../../etc/passwd"}))


@scenario("archive hard link pointing outside")
def _hardlink(env: Env) -> list[str]:
    return _placed(env, "DRIVE.tar", _tar([("DRIVE/x", tarfile.LNKTYPE, "../../etc/passwd")]))


@scenario("archive symlink chain leaving the folder")
def _symlink_chain(env: Env) -> list[str]:
    return _placed(env, "DRIVE.tar", _tar([("d/up", tarfile.SYMTYPE, ".."),
                                           ("d/up/esc", tarfile.SYMTYPE, "..")]))


# --- checkpoints and downloads ------------------------------------------------------------

def _checkpoint(env: Env, url: str, size: int = 100, sha: str = "0" * 64) -> list[str]:
    return env.run("checkpoint", "--backbone", "sam_vit_b", "--models-dir",
                   str(env.root / "models"),
                   overrides=[f"backbones.sam_vit_b.checkpoint.url={url}",
                              f"backbones.sam_vit_b.checkpoint.bytes={size}",
                              f"backbones.sam_vit_b.checkpoint.sha256={sha}"])


@scenario("checkpoint with the wrong SHA-256")
def _checkpoint_mismatch(env: Env) -> list[str]:
    path = env.root / "models" / "sam_vit_b_01ec64.pth"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * 100)
    return _checkpoint(env, "http://127.0.0.1:9/sam.pth")


@scenario("no network")
def _no_network(env: Env) -> list[str]:
    return _checkpoint(env, "http://127.0.0.1:9/sam_vit_b_01ec64.pth")


@scenario("HTTP 404")
def _http_404(env: Env) -> list[str]:
    srv = env.server
    return _checkpoint(env, f"http://127.0.0.1:{srv.server_port}/missing.pth")


@scenario("connection dropped mid-download")
def _dropped(env: Env) -> list[str]:
    srv = env.server
    srv.files["/sam.pth"] = b"w" * 20000
    srv.broken["/sam.pth"] = "short"
    return _checkpoint(env, f"http://127.0.0.1:{srv.server_port}/sam.pth", size=20000)


@scenario("pickle checkpoint")
def _pickle_ckpt(env: Env) -> list[str]:
    run = env.root / "run"
    run.mkdir()
    torch.save({"epoch": 1, "model": Path("x")}, run / "last.pt")
    return _train(env, run)


@scenario("torn last.pt")
def _torn_last(env: Env) -> list[str]:
    run = env.root / "run"
    run.mkdir()
    buf = io.BytesIO()
    torch.save({"epoch": 1, "model": {"w": torch.zeros(100)}}, buf)
    (run / "last.pt").write_bytes(buf.getvalue()[:300])
    return _train(env, run)


@scenario("last.pt that is not a resume checkpoint")
def _foreign_last(env: Env) -> list[str]:
    run = env.root / "run"
    run.mkdir()
    torch.save({"weight": torch.zeros(3)}, run / "last.pt")
    return _train(env, run)


@scenario("SAM 2 checkpoint loaded into a SAM 2.1 config")
def _sam2_release(env: Env) -> list[str]:
    from samlora.models.sam2_build import build_sam2_base
    from samlora.utils.io import sha256_file

    torch.manual_seed(0)
    base = build_sam2_base("sam2_hiera_t", 1024)  # the 2.0 release's layout
    path = env.root / "ckpt" / "sam2_hiera_tiny.pt"
    path.parent.mkdir()
    torch.save({"model": base.state_dict()}, path)
    env.params = ["--params", str(REPO / "presets/demo.yaml")]
    return env.run("train", "--method", "sam2lora", "--train-set", "drive", "--seed", "0",
                   "--out", str(env.root / "run"), "--models-dir", str(path.parent),
                   overrides=[f"data.processed_dir={env.prepared.parent}",
                              "methods.sam2lora.backbone=sam2_hiera_t",
                              "backbones.sam2_hiera_t.img_size=256",
                              f"backbones.sam2_hiera_t.checkpoint.file={path.name}",
                              f"backbones.sam2_hiera_t.checkpoint.url={path.as_uri()}",
                              f"backbones.sam2_hiera_t.checkpoint.bytes={path.stat().st_size}",
                              f"backbones.sam2_hiera_t.checkpoint.sha256={sha256_file(path)}"])


# --- runs, predictions ---------------------------------------------------------------------

def _train(env: Env, run: Path, train_set: str = "drive", method: str = "topolora_sam_tiny"
           ) -> list[str]:
    env.params = ["--params", str(REPO / "presets/demo.yaml")]
    return env.run("train", "--method", method, "--train-set", train_set, "--seed", "0",
                   "--out", str(run),
                   overrides=[f"data.processed_dir={env.prepared.parent}",
                              "backbones.sam_tiny.img_size=64"])


def _zero_shot_run(env: Env) -> Path:
    """A finished zero-shot run on the tiny SAM (config.yaml + empty weights file)."""
    run = env.root / "zs"
    argv = _train(env, run, method="zero_shot")
    assert cli.main([*argv, "methods.zero_shot.backbone=sam_tiny"]) == 0
    return run


def _predict(env: Env, run: Path) -> list[str]:
    env.params = ["--params", str(REPO / "presets/demo.yaml")]
    return env.run("predict", "--run", str(run), "--test-set", "drive", "--out",
                   str(env.root / "pred"),
                   overrides=[f"data.processed_dir={env.prepared.parent}",
                              "backbones.sam_tiny.img_size=64",
                              "methods.zero_shot.backbone=sam_tiny"])


@scenario("zero-byte adapter.safetensors")
def _empty_weights(env: Env) -> list[str]:
    run = _zero_shot_run(env)
    (run / "adapter.safetensors").write_bytes(b"")
    return _predict(env, run)


@scenario("torn adapter.safetensors")
def _torn_weights(env: Env) -> list[str]:
    run = _zero_shot_run(env)
    data = (run / "adapter.safetensors").read_bytes()
    (run / "adapter.safetensors").write_bytes(data[: len(data) // 2])
    return _predict(env, run)


@scenario("broken config.yaml")
def _broken_config(env: Env) -> list[str]:
    run = _zero_shot_run(env)
    (run / "config.yaml").write_text("method: [zero_shot\n")
    return _predict(env, run)


@scenario("weights and config.yaml of different runs")
def _mixed_run(env: Env) -> list[str]:
    run = _zero_shot_run(env)
    rc = yaml.safe_load((run / "config.yaml").read_text())
    rc["run_hash"] = "f" * 64
    (run / "config.yaml").write_text(yaml.safe_dump(rc))
    return _predict(env, run)


@scenario("train on a dataset that is not prepared")
def _unprepared(env: Env) -> list[str]:
    return _train(env, env.root / "run", train_set="chase_db1")


@scenario("train on an unknown dataset")
def _train_unknown(env: Env) -> list[str]:
    return _train(env, env.root / "run", train_set="nosuch")


@scenario("unknown method")
def _unknown_method(env: Env) -> list[str]:
    return _train(env, env.root / "run", method="nosuch")


@scenario("evaluate before predict")
def _evaluate_first(env: Env) -> list[str]:
    return env.run("evaluate", "--pred", str(env.root / "pred"), "--test-set", "drive")


# --- params --------------------------------------------------------------------------------

@scenario("unknown params key in an override")
def _unknown_override(env: Env) -> list[str]:
    return [*env.run("datasets"), "train.lrr=1"]


@scenario("unknown params key added with +")
def _unknown_plus(env: Env) -> list[str]:
    return [*env.run("datasets"), "+train.lrr=1"]


@scenario("unknown params key in a preset")
def _unknown_preset_key(env: Env) -> list[str]:
    preset = env.root / "preset.yaml"
    preset.write_text("train:\n  lrr: 1\n")
    env.params = ["--params", str(preset)]
    return env.run("datasets")


@scenario("params value of the wrong type")
def _wrong_type(env: Env) -> list[str]:
    return [*env.run("datasets"), "train.epochs=many"]


# --- the disk ------------------------------------------------------------------------------

@scenario("disk full")
def _disk_full(env: Env) -> list[str]:
    import samlora.utils.io as sio

    def full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(src))

    env.monkeypatch.setattr(sio.os, "replace", full)
    return env.run("download", "--dataset", "drive")


@scenario("read-only output folder")
def _read_only(env: Env) -> list[str]:
    import samlora.utils.io as sio

    def refuse(*args: object, dir: object = None, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", f"{dir}/.tmpXYZ")

    env.monkeypatch.setattr(sio.tempfile, "mkstemp", refuse)
    return env.run("download", "--dataset", "drive")


# --- the test ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def drive_prepared(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from samlora.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("catalogue") / "processed" / "drive"
    prepare_dataset("drive", mirror / "DRIVE", out, {"red_threshold": 0.1, "radius": 3})
    return out


@pytest.fixture(scope="module")
def server() -> object:
    from .data.download_helpers import serving

    with serving() as srv:
        yield srv


def test_every_scenario_has_a_row_and_every_row_a_scenario() -> None:
    rows = catalogue_rows()
    assert sorted(set(rows) - set(SCENARIOS)) == [], "rows without a scenario"
    assert sorted(set(SCENARIOS) - set(rows)) == [], "scenarios without a README row"


@pytest.mark.parametrize("case", sorted(SCENARIOS))
def test_catalogue_row(case: str, mirror: Path, drive_prepared: Path, server: object,
                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       caplog: pytest.LogCaptureFixture) -> None:
    rows = catalogue_rows()
    assert case in rows, f"README catalogue has no row {case!r}"
    env = Env(root=tmp_path, mirror=mirror, prepared=drive_prepared, monkeypatch=monkeypatch)
    env.server = server  # type: ignore[attr-defined]
    monkeypatch.chdir(tmp_path)
    argv = SCENARIOS[case](env)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="samlora"):
        code = cli.main(argv)
    errors = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.ERROR and r.name == "samlora"]
    assert code == 2 and len(errors) == 1, (code, errors)
    line = errors[0]
    assert "\n" not in line, f"more than one line:\n{line}"
    assert "Traceback" not in line
    assert pattern(rows[case]).fullmatch(line), f"README says\n  {rows[case]}\nthe user sees\n  {line}"
