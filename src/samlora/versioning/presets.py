"""Refuse a params edit that a later params file would silently override.

A preset is merged on top of params.yaml. If ``dvc exp run -S train.lr=1e-5`` edits
params.yaml while ``preset: presets/demo.yaml`` sets ``train.lr`` too, the preset's value
wins: DVC records an experiment that never happened. :func:`check` compares each active
params file (params.yaml, then its presets in order) with its committed version
(``git show HEAD:<file>``, the experiment's baseline) and refuses every edited key that a
later file sets, saying where to edit it instead.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from samlora.config import ConfigError, load_yaml12, param_files

#: params.yaml keys a preset never sets (the preset choice itself).
OWN_KEYS = frozenset({"preset"})


def leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> value of every leaf (lists are leaves: a preset replaces them)."""
    if not isinstance(tree, Mapping) or not tree:
        return {prefix.rstrip("."): tree} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(leaves(value, f"{prefix}{key}."))
    return out


def edited_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    """Dotted keys whose value differs between two params trees (added or removed too)."""
    a, b = leaves(old), leaves(new)
    return {k for k in a.keys() | b.keys() if a.get(k, object()) != b.get(k, object())
            or (k in a) != (k in b)}


def overlaps(key: str, other: str) -> bool:
    """Whether one dotted key is the other or lies inside it."""
    return key == other or key.startswith(f"{other}.") or other.startswith(f"{key}.")


def committed(repo: Path, name: str = "params.yaml") -> dict[str, Any] | None:
    """The committed version of a file at HEAD, parsed; None outside git or if untracked."""
    try:
        out = subprocess.run(["git", "show", f"HEAD:{name}"], cwd=repo, capture_output=True,
                             text=True, check=False)
    except OSError:
        return None
    if out.returncode != 0:
        return None
    data = load_yaml12(out.stdout)
    return data if isinstance(data, dict) else None


def shadowed(edited: set[str], preset: Mapping[str, Any]) -> list[str]:
    """The edited keys a preset sets (itself, a parent or a child of it), sorted."""
    sets = leaves(preset)
    return sorted(k for k in edited if any(overlaps(k, p) for p in sets))


def check(repo: Path) -> None:
    """Raise :class:`ConfigError` if a later active file overrides an edited key."""
    repo = Path(repo)
    files = param_files([repo / "params.yaml"])
    names = [f.relative_to(repo) if f.is_relative_to(repo) else f for f in files]
    trees = [load_yaml12(f.read_text()) or {} for f in files]
    for i, name in enumerate(names[:-1]):
        old = committed(repo, str(name))
        if old is None:
            continue
        edited = {k for k in edited_keys(old, trees[i]) if k.split(".")[0] not in OWN_KEYS}
        for later, tree in zip(names[i + 1:], trees[i + 1:]):
            hits = shadowed(edited, tree)
            if hits:
                raise ConfigError(
                    f"{name}: {', '.join(hits)} edited, but the active preset {later} sets "
                    f"{'it' if len(hits) == 1 else 'them'} and would win; edit the preset "
                    f"instead (dvc exp run -S {later}:{hits[0]}=...) or set preset: [] first"
                )
