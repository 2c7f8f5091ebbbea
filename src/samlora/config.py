"""Load params.yaml (+ presets) and apply Hydra overrides: the one place config is composed.

Order of precedence, lowest first: ``params.yaml``, the presets its ``preset`` key names, each
further preset file given (override files such as ``presets/demo.yaml``), then Hydra
command-line overrides (``train.lr=3e-4``). params.yaml's ``preset`` key is how DVC records
the choice (``dvc exp run -S preset=presets/demo.yaml``); Snakemake, DVC and the CLI all
expand it the same way (:func:`param_files`). The merged
result is validated against ``workflow/schemas/params.schema.yaml`` (unknown keys are errors)
and cross-checked (methods name known backbones, protocols name known datasets).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from samlora.utils.io import write_text

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "params.schema.yaml"


#: Sections whose entries a preset may add (not only override): its own studies.
OPEN_SECTIONS = frozenset({"studies"})
#: Optional blocks of a method a preset may add (the schema checks their contents).
METHOD_OPTIONAL = frozenset({"train", "prompts", "geometry", "multimask", "encoder"})


class ConfigError(ValueError):
    """A params file, preset or override is malformed or names something unknown."""


def load_yaml12(text: str) -> Any:
    """Parse YAML 1.2 (ruamel.yaml's safe loader, as DVC reads and writes params): ``1e-05``
    is a float and ``off`` a string, where PyYAML's YAML 1.1 reads a string and False."""
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(text)


def _load_yaml(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAMLError

    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        data = load_yaml12(path.read_text())
    except YAMLError as err:
        raise ConfigError(" ".join(f"{path}: not valid YAML: {err}".split())) from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def preset_entries(value: Any, where: str) -> list[str]:
    """The preset files a ``preset`` value names: null or "" (none), a path, or a list."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return list(value)
    raise ConfigError(f"{where}: preset: {value!r}; give a preset file (presets/demo.yaml), "
                      "a list of them, or [] for none")


def param_files(paths: Sequence[str | Path]) -> list[Path]:
    """params.yaml, then the presets its ``preset`` key names, then the other files given.

    The presets are read relative to the repository root (where params.yaml is). A file
    given twice (in the key and on the command line) is merged once, at its first place.
    """
    if not paths:
        raise ConfigError("no params file given")
    first = Path(paths[0])
    base = _load_yaml(first)
    named = [first.parent / p if first.parent != Path(".") else Path(p)
             for p in preset_entries(base.get("preset"), str(first))]
    out: list[Path] = []
    for path in [first, *named, *(Path(p) for p in paths[1:])]:
        if path.resolve() not in {p.resolve() for p in out}:
            out.append(path)
    return out


def merge_files(paths: Sequence[Path]) -> DictConfig:
    """Merge params files in order; each later file overrides keys of the earlier ones."""
    if not paths:
        raise ConfigError("no params file given")
    base = OmegaConf.create(_load_yaml(Path(paths[0])))
    for path in paths[1:]:
        preset = OmegaConf.create(_load_yaml(Path(path)))
        if "preset" in preset:
            raise ConfigError(f"{path}: a preset cannot name presets (preset: is params.yaml's "
                              "key); list every file in params.yaml's preset")
        _check_known_keys(base, preset, str(path))
        base = OmegaConf.merge(base, preset)
    return base


def _check_known_keys(base: Any, over: Any, where: str, prefix: str = "") -> None:
    """Reject preset keys that params.yaml does not define (typos would otherwise be ignored)."""
    if not isinstance(over, DictConfig) or not isinstance(base, DictConfig):
        return
    for key in over:
        dotted = f"{prefix}{key}"
        if dotted in OPEN_SECTIONS or prefix.rstrip(".") in OPEN_SECTIONS:
            continue  # a preset may define studies of its own
        if key not in base:
            parent = prefix.rstrip(".")
            if parent == "methods" or (parent.startswith("methods.") and parent.count(".") == 1
                                       and key in METHOD_OPTIONAL):
                continue  # a method of the preset's own, or a method's optional block
            raise ConfigError(f"{where}: unknown params key '{dotted}' (not in params.yaml)")
        _check_known_keys(base[key], over[key], where, f"{dotted}.")


@contextlib.contextmanager
def _fresh_global_hydra() -> Iterator[None]:
    """Compose with our own Hydra instance, then restore any global one (sam2 sets one)."""
    from hydra.core.global_hydra import GlobalHydra

    gh = GlobalHydra.instance()
    saved = gh.hydra if gh.is_initialized() else None
    gh.clear()
    try:
        yield
    finally:
        # hydra's initialize_* context swaps the singleton object on exit: fetch it again
        GlobalHydra.instance().clear()
        if saved is not None:
            GlobalHydra.instance().initialize(saved)


def apply_overrides(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """Apply Hydra override strings (``key=value``, ``+key=value``, ``~key``) to ``cfg``."""
    if not overrides:
        return cfg
    for item in overrides:
        _check_override_key(cfg, item)
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    with tempfile.TemporaryDirectory(prefix="samlora-cfg-") as tmp:
        Path(tmp, "params.yaml").write_text(OmegaConf.to_yaml(cfg))
        with _fresh_global_hydra(), initialize_config_dir(config_dir=tmp, version_base="1.3"):
            try:
                out = compose(config_name="params", overrides=list(overrides))
            except (HydraException, OmegaConfBaseException) as err:
                raise ConfigError(f"bad override in {list(overrides)}: {err}") from err
    OmegaConf.set_struct(out, False)
    return out


def _check_override_key(cfg: DictConfig, item: str) -> None:
    """A plain ``key=value`` override must name a key params.yaml has (``+key`` adds one)."""
    key = item.split("=", 1)[0].strip()
    if "=" not in item or key.startswith(("+", "~")):
        return
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            raise ConfigError(f"unknown params key '{key}' in override '{item}' (not in "
                              "params.yaml); check its spelling against params.yaml")
        node = node[part]


def validate(cfg: DictConfig, source: str = "params") -> None:
    """Check ``cfg`` against the params schema and its internal references."""
    import jsonschema

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    data = OmegaConf.to_container(cfg, resolve=True)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=str)
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set((err.schema or {}).get("properties", {}))
            extra = sorted(k for k in err.instance if k not in allowed)
            if extra:
                where = f"{key}." if err.absolute_path else ""
                raise ConfigError(f"{source}: unknown params key '{where}{extra[0]}' (not in "
                                  "the params schema); check its spelling against params.yaml")
        raise ConfigError(f"{source}: key '{key}': {err.message}")
    _check_references(cfg, source)


def _check_references(cfg: DictConfig, source: str) -> None:
    for name, method in cfg.methods.items():
        if method.backbone not in cfg.backbones:
            raise ConfigError(
                f"{source}: methods.{name}.backbone names unknown backbone '{method.backbone}'"
            )
    from samlora.data.registry import dataset_ids

    known = dataset_ids()
    for ds in cfg.data.datasets:
        if ds not in known:
            raise ConfigError(f"{source}: data.datasets names unknown dataset '{ds}'; "
                              f"registered datasets: {', '.join(known)}")
    _check_split_variants(cfg, source, known)
    _check_studies(cfg, source)


def _check_studies(cfg: DictConfig, source: str) -> None:
    """Every enabled study exists; every study expands (its methods, sweep keys and
    datasets exist, one name per config). Whether its datasets are among data.datasets is
    checked where it runs (``plan``, ``train --run-name``), not for every step: preparing
    a few datasets needs no study."""
    from samlora.study.studies import StudyError, expand, study_names

    names = study_names(cfg)
    for name in cfg.studies.enabled:
        if name not in names:
            raise ConfigError(f"{source}: studies.enabled names unknown study '{name}'; "
                              f"defined: {names}")
    from samlora.data.registry import dataset_ids

    registered = set(dataset_ids())
    for name in names:
        for proto in cfg.studies[name].protocols:
            train = [proto.train] if isinstance(proto.train, str) else list(proto.train)
            for ds in [*train, *proto.test]:
                if ds not in registered:
                    raise ConfigError(f"{source}: study '{name}' uses unknown dataset '{ds}'; "
                                      f"registered datasets: {', '.join(sorted(registered))}")
    try:
        expand(cfg)
    except (StudyError, KeyError) as err:
        raise ConfigError(f"{source}: {err}") from None


def _check_split_variants(cfg: DictConfig, source: str, known: Sequence[str]) -> None:
    """Each ``data.split_variants`` key is a registered dataset whose split file allows
    the variant given (or null)."""
    from samlora.data.split_files import SplitFileError, check_variant

    for ds, variant in (cfg.data.get("split_variants") or {}).items():
        key = f"data.split_variants.{ds}"
        if ds not in known:
            raise ConfigError(f"{source}: {key}: unknown dataset '{ds}'; registered "
                              f"datasets: {', '.join(known)}")
        try:
            check_variant(ds, None if variant is None else str(variant))
        except SplitFileError as err:
            raise ConfigError(f"{source}: {key}: {err}") from None


def load_config(
    params: Sequence[str | Path] = ("params.yaml",), overrides: Sequence[str] = ()
) -> DictConfig:
    """Compose params.yaml, presets and Hydra overrides into one validated config.

    Args:
        params: params.yaml first, then preset files, each overriding the ones before
            (the presets params.yaml's ``preset`` key names come right after it).
        overrides: Hydra override strings applied last.

    Returns:
        The merged config (plain, non-struct DictConfig).
    """
    paths = param_files(params)
    cfg = apply_overrides(merge_files(paths), overrides)
    validate(cfg, source=" + ".join(str(p) for p in paths))
    return cfg


def select(cfg: DictConfig, keys: Sequence[str]) -> dict[str, Any]:
    """The parts of ``cfg`` named by dotted ``keys`` as a nested plain dict."""
    out: dict[str, Any] = {}
    for key in keys:
        value = OmegaConf.select(cfg, key, throw_on_missing=True)
        if isinstance(value, DictConfig) or OmegaConf.is_list(value):
            value = OmegaConf.to_container(value, resolve=True)
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def save_config(cfg: Mapping[str, Any] | DictConfig, path: str | Path) -> None:
    """Write a resolved config as YAML beside a step's outputs (atomically)."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    text = yaml.safe_dump(dict(cfg), sort_keys=False)
    path = Path(path)
    if path.is_file() and path.read_text() == text:
        return  # unchanged: keep the file (and its mtime) as it is
    write_text(path, text)
