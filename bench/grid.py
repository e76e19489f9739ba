"""Recipes as grids: ``conf/experiment/<family>.grid.yaml`` declares one recipe and a table of its presets.

A recipe file is an ordinary experiment config plus a ``grid:`` block::

    grid:
      name: fewglue_pet_{task}     # each preset's name; the placeholders come from the row's key
      rows:                        # one preset per row: its key, then the values only it has (merged over the recipe)
        boolq: {}
        copa: {task: {choice_loss: hinge_batch}}

A row key fills the placeholders of ``name`` in order, split on ``_`` (``rte_bert`` fills ``{task}_{arch}``);
``lookup: {<placeholder>: {<row>: <value>}}`` names further ones per row (LAMA-34k's task config is ``lama``);
``variants: {<suffix>: {...}}`` makes every row a second time, as ``<name>_<suffix>`` with those values on top
(P-Tuning v2's ``*_valsel``). Rows cannot change the defaults list (use a placeholder there) or drop a key.
Every ``{placeholder}`` in the recipe's strings (defaults list, ``needs.presets``, ...) takes the row's value.
Hydra serves each preset as if it were a file (``GridConfigSource``, put beside the primary config folder
by ``GridSearchPath``), so ``experiment=fewglue_pet_copa`` keeps its name everywhere: on the command line,
in Hydra's choices and hence in run names, records and result folders. Hydra has no per-row expansion of
one file into several options of a group, hence this config source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from hydra.core.object_type import ObjectType
from hydra.core.plugins import Plugins
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import OmegaConf

from bench.errors import ConfigError

SUFFIX = ".grid.yaml"
GROUP = "experiment"
SCHEME = "bench-grid"
_PLACEHOLDER = re.compile(r"\{([a-z]+)\}")


def recipe_files(conf_dir: Path) -> list[Path]:
    return sorted((Path(conf_dir) / GROUP).glob(f"*{SUFFIX}"))


def _substitute(tree: Any, values: Mapping[str, str]) -> Any:
    if isinstance(tree, str):
        for key, value in values.items():
            tree = tree.replace(f"{{{key}}}", value)
        return tree
    if isinstance(tree, Mapping):
        return {_substitute(k, values): _substitute(v, values) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_substitute(v, values) for v in tree]
    return tree


def _header(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"^#\s*@(\w+)\s+(\S+)", text[:512], re.MULTILINE)}


def expand_text(text: str, where: str) -> dict[str, tuple[dict, dict]]:
    """A recipe's presets: name -> (header, body), the body as the preset file would hold it."""
    recipe = yaml.safe_load(text) or {}
    grid = recipe.pop("grid", None)
    if not isinstance(grid, Mapping) or not isinstance(grid.get("name"), str) or not isinstance(grid.get("rows"), Mapping):
        raise ConfigError(f"{where}: a recipe needs `grid: {{name: <preset>_{{task}}, rows: {{<task>: {{...}}}}}}`.\n"
                          f"  fix: add the grid block (docs/extending.md) or rename the file without {SUFFIX}")
    keys = _PLACEHOLDER.findall(grid["name"])
    header, out = _header(text), {}
    for row, values in grid["rows"].items():
        parts = str(row).split("_")
        if len(parts) != len(keys):
            raise ConfigError(f"{where}: grid row {row!r} has {len(parts)} part(s) for the {len(keys)} placeholder(s) of "
                              f"{grid['name']!r}.\n  fix: name the row <{'>_<'.join(keys)}>")
        if values is not None and not isinstance(values, Mapping):
            raise ConfigError(f"{where}: grid row {row!r} holds {values!r}; expected a mapping of values ({{}} for none)")
        filled = dict(zip(keys, parts, strict=True))
        for key, table in (grid.get("lookup") or {}).items():  # placeholders named per row: {task: {lama34k: lama}}
            if not isinstance(table, Mapping) or row not in table:
                raise ConfigError(f"{where}: grid.lookup.{key} has no value for row {row!r}.\n"
                                  f"  fix: add `{row}: <value>` under grid.lookup.{key}")
            filled[key] = str(table[row])
        body = _substitute(recipe, filled)
        if values:
            extra = _substitute(dict(values), filled)
            if "defaults" in extra:
                raise ConfigError(f"{where}: grid row {row!r} sets `defaults`; put group choices in the recipe's "
                                  "defaults list with a placeholder (override /template: pet_{task})")
            body = OmegaConf.to_container(OmegaConf.merge(OmegaConf.create(body), OmegaConf.create(extra)))
        name = _substitute(grid["name"], filled)
        out[name] = (header, body)
        for suffix, more in (grid.get("variants") or {}).items():  # each row again as <name>_<suffix>, more values on top
            merged = OmegaConf.merge(OmegaConf.create(body), OmegaConf.create(_substitute(dict(more or {}), filled)))
            out[f"{name}_{suffix}"] = (header, OmegaConf.to_container(merged))
    return out


@lru_cache(maxsize=64)
def _expand_cached(path: str, mtime_ns: int, size: int) -> dict[str, tuple[dict, dict]]:
    return expand_text(Path(path).read_text(encoding="utf-8"), path)


def expand_file(path: Path) -> dict[str, tuple[dict, dict]]:
    stat = path.stat()
    return _expand_cached(str(path), stat.st_mtime_ns, stat.st_size)


def grid_presets(conf_dir: Path) -> dict[str, Path]:
    """Every preset the recipes of ``conf_dir`` declare -> its recipe file; a name made twice is an error."""
    out: dict[str, Path] = {}
    folder = Path(conf_dir) / GROUP
    for path in recipe_files(conf_dir):
        for name in expand_file(path):
            if name in out or (folder / f"{name}.yaml").exists():
                other = out.get(name, folder / f"{name}.yaml")
                raise ConfigError(f"preset {name!r} is made twice: by {path} and by {other}.\n"
                                  "  fix: drop one (a recipe row or the file)")
            out[name] = path
    return out


def preset_names(conf_dir: Path) -> list[str]:
    """Every experiment preset: the files (not the recipes themselves) and the recipes' rows."""
    files = [p.stem for p in (Path(conf_dir) / GROUP).glob("*.yaml") if not p.name.endswith(SUFFIX)]
    return sorted({*files, *grid_presets(conf_dir)})


def preset_body(conf_dir: Path, name: str) -> tuple[dict, dict] | None:
    """(header, body) of a recipe's preset, or None when no recipe makes ``name``."""
    path = grid_presets(conf_dir).get(name)
    return None if path is None else expand_file(path)[name]


class GridConfigSource(ConfigSource):
    """Hydra config source: ``experiment/<preset>`` for every row of the recipes in ``<path>/experiment``."""

    @staticmethod
    def scheme() -> str:
        return SCHEME

    def _name(self, config_path: str) -> str | None:
        group, _, name = config_path.removesuffix(".yaml").rpartition("/")
        return name if group == GROUP else None

    def load_config(self, config_path: str) -> ConfigResult:
        name = self._name(config_path)
        found = None if name is None else preset_body(Path(self.path), name)
        if found is None:
            raise ConfigLoadError(f"no recipe in {self.path}/{GROUP} makes {config_path}")
        header, body = found
        return ConfigResult(config=OmegaConf.create(body), path=f"{SCHEME}://{self.path}", provider=self.provider,
                            header=dict(header))

    def available(self) -> bool:
        return (Path(self.path) / GROUP).is_dir()

    def is_group(self, config_path: str) -> bool:
        return config_path.strip("/") in ("", GROUP) and self.available()

    def is_config(self, config_path: str) -> bool:
        name = self._name(config_path)
        return name is not None and self.available() and name in grid_presets(Path(self.path))

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        if config_path.strip("/") == "":
            return [GROUP] if results_filter in (None, ObjectType.GROUP) and self.available() else []
        if config_path.strip("/") != GROUP or results_filter == ObjectType.GROUP or not self.available():
            return []
        return sorted(grid_presets(Path(self.path)))


class GridSearchPath(SearchPathPlugin):
    """Puts a grid source beside the primary config folder (whichever conf/ a run or test composes from)."""

    def manipulate_search_path(self, search_path: Any) -> None:
        for entry in list(search_path.get_path()):
            path = str(entry.path)
            if entry.provider == "main" and (path.startswith("file://") or "://" not in path):
                search_path.append(provider="bench-grid", path=f"{SCHEME}://{path.removeprefix('file://')}")


def register() -> None:
    """Make Hydra serve the recipes' presets (idempotent: Hydra keeps one entry per class)."""
    for clazz in (GridConfigSource, GridSearchPath):
        Plugins.instance().register(clazz)
