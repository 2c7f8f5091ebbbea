"""Studies: named experiments of params.yaml expanded into the runs and evaluations they need.

``studies:`` in params.yaml holds one section per study and ``enabled``, the studies
``snakemake all`` and ``dvc repro`` run. A study lists:

- ``paper`` and ``feeds``: which paper, and which of its tables or figures it fills;
- ``seeds``;
- ``methods``: method ids, or sweeps written once, ``{base: topolora_sam, sweep: {lora.r:
  [4, 8, 16, 32]}}``; several keys are zipped (``{lora.r: [32, 64], lora.alpha: [64,
  128]}``), and a ``train.<key>`` sets the method's own train settings. A variant's name is
  derived: ``topolora_sam-r4``, ``sam2lora-r32-alpha64``;
  ``{base: topolora_sam, fidelity: reference}`` trains the method as its paper's code does
  (:mod:`samlora.fidelity`; name ``topolora_sam-ref``; ``paper`` defaults to the study's),
  and a study-wide ``fidelity: reference`` does so for its plain method names;
- ``protocols``: ``{train: <dataset> | [<datasets>], name: <union name>, target: <label
  kind>, sampling: proportional | balanced, test: [<datasets>]}``;
- ``modes`` (optional): the evaluation modes its summary reports, from ``evaluate.modes``;
  default ours (``native_fov``) plus its paper's (``topolora_ref`` for TopoLoRA-SAM,
  ``sam2lora_ref`` for SAM2LoRA, both for a study of samlora's own).

A run's identity is its config (method settings, backbone, train settings, train sets,
target, seed), not the study that asked for it: identical runs asked for by several
studies, or by a sweep value equal to a plain method, are one :class:`RunSpec` under one
name and train once. Two different configs under one name are an error.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from samlora.study.runspec import RunSpec, make_spec

NAME_OK = re.compile(r"^[A-Za-z0-9_.+=-]+$")


class StudyError(ValueError):
    """A study section that cannot be expanded (names the key at fault)."""


@dataclass(frozen=True)
class Protocol:
    """Train on one dataset or a union, for one target; test on each of ``test``."""

    train_sets: tuple[str, ...]
    train_name: str
    target: str | None
    test: tuple[str, ...]
    sampling: str = "proportional"


@dataclass(frozen=True)
class Study:
    """A named experiment: its runs and the (run, test set) evaluations it reports."""

    name: str
    paper: str
    feeds: tuple[str, ...]
    runs: tuple[RunSpec, ...]
    evaluations: tuple[tuple[RunSpec, str], ...]
    reports: tuple[str, ...]
    reference: str | None = None  # the method the others are compared with
    human: tuple[str, ...] = ()  # test sets scored for the inter-observer (human) row
    modes: tuple[str, ...] = ("native_fov",)  # evaluation modes of its summary

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(r.method for r in self.runs))


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) or \
        OmegaConf.is_list(node) else copy.deepcopy(node)


def study_names(cfg: DictConfig) -> list[str]:
    """Every study defined under ``studies`` (in file order)."""
    return [k for k in cfg.studies if k != "enabled"]


def enabled_studies(cfg: DictConfig) -> list[str]:
    return [str(s) for s in cfg.studies.enabled]


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "+".join(_format(v) for v in value)
    return str(value)


def _set(tree: dict[str, Any], dotted: str, value: Any, where: str) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        if part == "train" and node is tree:
            node = node.setdefault("train", {})
            continue
        if not isinstance(node.get(part), dict):
            raise StudyError(f"{where}: the method has no section '{part}' for '{dotted}'")
        node = node[part]
    if parents[:1] != ["train"] and leaf not in node:
        raise StudyError(f"{where}: the method has no key '{dotted}'")
    node[leaf] = value


#: Reports of a study that names none: the general table and the comparisons neither
#: paper makes (``notebooks/<name>.ipynb``).
DEFAULT_REPORTS = ("main_results", "samlora_results")
#: Suffix of a method trained as its paper's code does (``fidelity: reference``).
REFERENCE_SUFFIX = "ref"


def _with_fidelity(method_cfg: dict[str, Any], paper: str | None, where: str,
                   family: str | None = None) -> dict[str, Any]:
    """``method_cfg`` with every reference value of ``paper``'s code for its backbone (of
    ``family``) applied (:func:`samlora.fidelity.reference_overrides`); a key whose section
    the method lacks (e.g. ``adapter.init`` on a method without adapter) is skipped."""
    from samlora.fidelity import PAPERS, reference_overrides

    if paper not in PAPERS:
        raise StudyError(f"{where}: fidelity reference needs the paper whose code to follow: "
                         f"set 'paper' ({list(PAPERS)}) on the entry or the study")
    out = copy.deepcopy(method_cfg)
    for dotted, value in reference_overrides(paper, out.get("backbone"), family).items():
        *parents, leaf = dotted.split(".")
        node = out
        for part in parents:
            if part == "train" and node is out:
                node = node.setdefault("train", {})
                continue
            node = node.get(part) if isinstance(node.get(part), dict) else None
            if node is None:
                break
        if node is not None:
            node[leaf] = value
    return out


def method_variants(cfg: DictConfig, entry: Any, where: str, paper: str | None = None,
                    fidelity: str = "corrected") -> list[tuple[str, str, dict[str, Any]]]:
    """``(name, base method, resolved method config)`` of one ``methods`` entry.

    ``fidelity: reference`` (on the entry, or the study's default for plain names) applies
    the reference code's values of ``paper`` (the entry's ``paper``, else the study's) and
    appends ``-ref`` to the name.
    """
    if isinstance(entry, str):
        entry = {"base": entry, "fidelity": fidelity}
        if entry["base"] not in cfg.methods:
            raise StudyError(f"{where}: unknown method '{entry['base']}'")
    entry = _plain(entry)
    base, sweep = entry.get("base"), entry.get("sweep") or {}
    if base not in cfg.methods:
        raise StudyError(f"{where}.base: unknown method {base!r}")
    level = entry.get("fidelity", "corrected")
    if level not in ("corrected", "reference"):
        raise StudyError(f"{where}.fidelity: {level!r} is not corrected or reference")
    start = _plain(cfg.methods[base])
    stem = base
    if level == "reference":
        family = (cfg.backbones.get(start.get("backbone")) or {}).get("family")
        start = _with_fidelity(start, entry.get("paper", paper), where, family)
        stem = f"{base}-{REFERENCE_SUFFIX}"
    if not sweep:
        same = _plain_method_named(cfg, start) if level == "reference" else base
        return [(same, same, start) if same else (stem, base, start)]
    lengths = {len(v) for v in sweep.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise StudyError(f"{where}.sweep: give each key a list of values, all of one length")
    out = []
    for i in range(lengths.pop()):
        method_cfg = copy.deepcopy(start)
        parts = []
        for key, values in sweep.items():
            _set(method_cfg, key, values[i], f"{where}.sweep")
            leaf, value = key.rsplit(".", 1)[-1], _format(values[i])
            parts.append(f"{leaf}={value}" if isinstance(values[i], (list, tuple)) else
                         f"{leaf}{value}")
        name = "-".join([stem, *parts])
        if not NAME_OK.match(name):
            raise StudyError(f"{where}: derived name {name!r} has characters that cannot be a "
                             "folder name")
        same = _plain_method_named(cfg, method_cfg)  # a value equal to a method of its own
        out.append((same, same, method_cfg) if same else (name, base, method_cfg))
    return out


def _plain_method_named(cfg: DictConfig, method_cfg: dict[str, Any]) -> str | None:
    """The params.yaml method whose config equals ``method_cfg``, if any (the first)."""
    for name in cfg.methods:
        if _plain(cfg.methods[name]) == method_cfg:
            return str(name)
    return None


def resolved_train(cfg: DictConfig, method_cfg: dict[str, Any]) -> dict[str, Any]:
    """The global ``train`` block with the method's own ``train`` overrides on top (the
    overrides are removed from ``method_cfg``)."""
    train = _plain(cfg.train)
    train.update(method_cfg.pop("train", None) or {})
    return train


def protocols(study: Mapping[str, Any], where: str) -> list[Protocol]:
    out = []
    for i, proto in enumerate(study.get("protocols") or []):
        train = proto["train"]
        members = (train,) if isinstance(train, str) else tuple(train)
        if len(members) > 1 and not proto.get("name"):
            raise StudyError(f"{where}.protocols[{i}]: a union of {list(members)} needs a name")
        out.append(Protocol(train_sets=members, train_name=proto.get("name") or members[0],
                            target=proto.get("target"), test=tuple(proto["test"]),
                            sampling=proto.get("sampling", "proportional")))
    if not out:
        raise StudyError(f"{where}: no protocols")
    return out


def _runs_of(cfg: DictConfig, name: str) -> tuple[Mapping[str, Any], list[tuple[RunSpec,
                                                                            Protocol]]]:
    where = f"studies.{name}"
    if name not in cfg.studies or name == "enabled":
        raise StudyError(f"unknown study '{name}'; params.yaml defines {study_names(cfg)}")
    study = _plain(cfg.studies[name])
    out = []
    paper, level = study.get("paper"), study.get("fidelity", "corrected")
    for i, entry in enumerate(study.get("methods") or []):
        for variant, base, method_cfg in method_variants(cfg, entry, f"{where}.methods[{i}]",
                                                         paper, level):
            train = resolved_train(cfg, method_cfg)
            backbone_cfg = _plain(cfg.backbones[method_cfg["backbone"]])
            for proto in protocols(study, where):
                for seed in study.get("seeds") or [0]:
                    out.append((make_spec(variant, base, method_cfg, backbone_cfg, train,
                                          proto.train_sets, proto.train_name, proto.target,
                                          seed, proto.sampling, cfg.data.processed_dir),
                                proto))
    return study, out


def _human_sets(runs: Sequence[tuple[RunSpec, Protocol]]) -> tuple[str, ...]:
    """Test sets of a study whose release has a second annotator of the label it scores
    (DRIVE, CHASE_DB1, STARE for vessels): each gets the human row."""
    from samlora.data.registry import get_dataset
    from samlora.study.runspec import primary_label

    out = []
    for spec, proto in runs:
        for test in proto.test:
            kinds = get_dataset(test).label_kinds
            if (primary_label(test) == spec.target and f"{spec.target}_2nd_observer" in kinds
                    and test not in out):
                out.append(test)
    return tuple(out)


def canonical(specs: Iterable[RunSpec]) -> dict[str, RunSpec]:
    """One spec per identity, keyed by name: of identical runs the first plain method name
    (or, failing one, the first name) is kept. Raises StudyError when one name carries two
    different configs."""
    by_name: dict[str, RunSpec] = {}
    by_identity: dict[tuple, RunSpec] = {}
    for spec in specs:
        key = _identity(spec)
        known = by_name.get(spec.name)
        if known is not None and _identity(known) != key:
            raise StudyError(f"run name '{spec.name}' is given to two different configs; "
                             "rename one of the methods or sweep values")
        chosen = by_identity.get(key)
        if chosen is None or (chosen.method != chosen.base_method
                              and spec.method == spec.base_method):
            by_identity[key] = spec
        by_name[spec.name] = spec
    keep = {s.name: s for s in by_identity.values()}
    return dict(sorted(keep.items()))


def _identity(spec: RunSpec) -> tuple:
    return (spec.config_hash, spec.train_sets, spec.target, spec.seed, spec.sampling)


def expand(cfg: DictConfig, names: Sequence[str] | None = None) -> dict[str, Study]:
    """The studies ``names`` (default: every study defined), with shared runs merged."""
    names = list(names) if names is not None else study_names(cfg)
    raw = {n: _runs_of(cfg, n) for n in names}
    pool = canonical(spec for _, runs in raw.values() for spec, _ in runs)
    by_identity = {_identity(s): s for s in pool.values()}
    studies = {}
    for name, (study, runs) in raw.items():
        chosen, evaluations = [], []
        for spec, proto in runs:
            shared = by_identity[_identity(spec)]
            if shared not in chosen:
                chosen.append(shared)
            for test in proto.test:
                if (shared, test) not in evaluations:
                    evaluations.append((shared, test))
        studies[name] = Study(name=name, paper=str(study.get("paper", "")),
                              feeds=tuple(study.get("feeds") or ()), runs=tuple(chosen),
                              evaluations=tuple(evaluations),
                              reports=tuple(study.get("reports") or DEFAULT_REPORTS),
                              reference=study.get("reference") or (chosen[0].method
                                                                   if chosen else None),
                              human=_human_sets(runs),
                              modes=study_modes(cfg, name, study))
    return studies


#: A paper's own evaluation mode (:mod:`samlora.evaluation.modes`).
PAPER_MODES = {"topolora-sam": ("topolora_ref",), "sam2lora": ("sam2lora_ref",)}


def study_modes(cfg: DictConfig, name: str, study: Mapping[str, Any]) -> tuple[str, ...]:
    """``studies.<name>.modes``, or ours plus the paper's; each must be in evaluate.modes.

    Raises:
        StudyError: a mode that ``evaluate.modes`` does not compute.
    """
    computed = [str(m) for m in cfg.evaluate.get("modes", ["native_fov"])]
    given = study.get("modes")
    if given is not None:
        modes = tuple(str(m) for m in given)
        missing = [m for m in modes if m not in computed]
        if missing or not modes:
            raise StudyError(f"studies.{name}.modes: {list(modes)} must be evaluation modes "
                             f"that evaluate.modes computes ({computed}); add {missing} there")
        return modes
    paper = str(study.get("paper", "")).lower()
    wanted = ("native_fov", *PAPER_MODES.get(paper, ("topolora_ref", "sam2lora_ref")))
    return tuple(m for m in wanted if m in computed) or tuple(computed[:1])


def all_runs(studies: Mapping[str, Study]) -> dict[str, RunSpec]:
    """Every run of ``studies``, by name."""
    return {r.name: r for s in studies.values() for r in s.runs}


def find_run(cfg: DictConfig, name: str) -> RunSpec:
    """The run called ``name`` in any study of params.yaml.

    Raises:
        KeyError: no study has a run of that name (lists a few that exist).
    """
    studies = expand(cfg)
    runs = all_runs(studies)
    if name not in runs:
        raise KeyError(f"no study in params.yaml has a run '{name}'; e.g. "
                       f"{sorted(runs)[:5]} (see `python -m samlora plan`)")
    missing = [d for d in runs[name].train_sets if d not in cfg.data.datasets]
    if missing:
        raise StudyError(f"run '{name}' trains on {missing}, not in data.datasets "
                         f"{list(cfg.data.datasets)}: add them there")
    return runs[name]


def single_run(cfg: DictConfig, method: str, train_set: str, seed: int,
               target: str | None = None) -> RunSpec:
    """An ad-hoc run of one params.yaml method on one dataset (the ``train`` command)."""
    if method not in cfg.methods:
        raise KeyError(f"unknown method '{method}'; params.yaml defines {list(cfg.methods)}")
    method_cfg = _plain(cfg.methods[method])
    train = resolved_train(cfg, method_cfg)
    return make_spec(method, method, method_cfg, _plain(cfg.backbones[method_cfg["backbone"]]),
                     train, (train_set,), train_set, target, seed,
                     processed_dir=cfg.data.processed_dir)


#: Method settings that leave the parameter count alone (losses, prompts, training).
_COUNT_NEUTRAL = ("loss", "prompts", "train")


def sweep_variants(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """Sweep variants of every study whose model differs from their base method's (a LoRA
    rank, a placement), by derived name: for ``python -m samlora params``."""
    def shape(method_cfg: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in method_cfg.items() if k not in _COUNT_NEUTRAL}

    out: dict[str, dict[str, Any]] = {}
    for run in all_runs(expand(cfg)).values():
        if run.method in cfg.methods or run.method in out:
            continue
        if shape(run.method_cfg) != shape(_plain(cfg.methods[run.base_method])):
            out[run.method] = run.method_cfg
    return dict(sorted(out.items()))


def check_datasets(cfg: DictConfig, studies: Mapping[str, Study]) -> None:
    """Every dataset the studies train or test on is in ``data.datasets`` (prepared).

    Raises:
        StudyError: naming the study and the dataset.
    """
    known = set(cfg.data.datasets)
    for name, study in studies.items():
        for spec, test in study.evaluations:
            for ds in (*spec.train_sets, test):
                if ds not in known:
                    raise StudyError(f"study '{name}' uses dataset '{ds}', which is not in "
                                     f"data.datasets {sorted(known)}: add it there")
