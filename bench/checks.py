"""Checks that run before any weights load: the composed config, then the run's inputs and outputs.

- :func:`validate_config` (compose time, no files but ``conf/``): every key is one the config
  groups declare (Hydra's ``+key=`` adds anything; a typo would be ignored), with the closest known
  key named; enumerations (``task.variant``, ``trainer.schedule``, ``device``, ``dtype``, ...) hold
  an allowed value, listed in the error.
- :func:`preflight` (cheap I/O, tokenizers but no weights): data files and fields of every split
  the run reads, template fields and slots, label-word tokenisation for the method, the device,
  a probe write into the results folders and the free disk space for the artifacts.

Both raise :class:`bench.errors.ConfigError` / :class:`bench.errors.DataError` naming the key,
file or line and the fix.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from bench import grid
from bench.errors import ConfigError, DataError
from bench.paths import REPO_ROOT
from bench.prompts.template import check_template

CONF_DIR = REPO_ROOT / "conf"
GROUPS = ("paths", "task", "model", "method", "template", "trainer")
GLOBAL_GROUPS = ("debug", "experiment", "study")  # files with `# @package _global_`: their keys count too
FREE_FORM = {("template", "texts"), ("template", "verbalizer"), ("template", "verbalizers"),
             ("template", "by_family"), ("template", "shape"), ("template", "parts"), ("task", "relations")}
SYNONYMS = {"learning_rate": "lr", "lr_backbone": "backbone_lr", "epochs": "max_epochs", "num_epochs": "max_epochs",
            "steps": "max_steps", "patience": "early_stopping_patience", "warmup": "warmup_steps",
            "clip": "grad_clip", "max_grad_norm": "grad_clip", "precision": "dtype", "scheduler": "schedule",
            "bs": "batch_size", "train_batch_size": "batch_size", "decay": "weight_decay"}
TASK_KINDS = ("lama", "classification")
MIN_FREE_BYTES = 64 * 2**20  # record, logs and failure records


# schema: the keys the config files declare ------------------------------------------------------
def _merge(into: dict, tree: Mapping) -> None:
    for key, value in tree.items():
        if isinstance(value, Mapping):
            node = into.setdefault(key, {})
            if isinstance(node, dict):
                _merge(node, value)
        else:
            into.setdefault(key, None)


def load_conf_yaml(path: Path) -> Any:
    """One config file, parsed; a malformed one is a ConfigError naming file:line:column and the problem."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: malformed YAML ({err.problem or err.context}).\n"
                          "  fix: correct that line (indentation, a missing ':' or an unclosed quote or bracket)") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: malformed YAML ({err})") from None


def check_conf_files(conf_dir: Path | None = None) -> None:
    """Every YAML a run can compose parses (Hydra's own error would be a long traceback)."""
    conf_dir = conf_dir or CONF_DIR
    for path in sorted(conf_dir.glob("*.yaml")):
        load_conf_yaml(path)
    for group in (*GROUPS, *GLOBAL_GROUPS, "hydra"):
        for path in sorted((conf_dir / group).glob("**/*.yaml")):
            load_conf_yaml(path)


def _yaml(path: Path) -> dict:
    data = load_conf_yaml(path) or {}
    data.pop("defaults", None)
    return data


@lru_cache(maxsize=4)
def schema(conf_dir: Path = CONF_DIR) -> dict:
    """Union of the keys of ``config.yaml``, of every file of each group, and of the global-package files."""
    tree: dict = {"hydra": None, **{group: None for group in GLOBAL_GROUPS}}  # an empty group file lands there
    _merge(tree, _yaml(conf_dir / "config.yaml"))
    for group in GROUPS:
        node = tree.setdefault(group, {})
        for path in sorted((conf_dir / group).glob("*.yaml")):
            _merge(node, _yaml(path))
    for group in GLOBAL_GROUPS:
        for path in sorted((conf_dir / group).glob("**/*.yaml")):
            if path.name.endswith(grid.SUFFIX):  # a recipe: the keys of the presets it makes
                for _header, body in grid.expand_file(path).values():
                    _merge(tree, {k: v for k, v in body.items() if k != "defaults"})
            elif "@package _global_" in path.read_text(encoding="utf-8"):
                _merge(tree, _yaml(path))
    return tree


@lru_cache(maxsize=4)
def component_keys(conf_dir: Path = CONF_DIR) -> dict[str, set[str]]:
    """Per method ``_target_``, the constructor arguments its config files use."""
    out: dict[str, set[str]] = {}
    for path in sorted((conf_dir / "method").glob("*.yaml")):
        component = _yaml(path).get("component") or {}
        if "_target_" in component:
            out.setdefault(component["_target_"], set()).update(component)
    return out


def _closest(key: str, known: list[str]) -> str | None:
    if key in SYNONYMS and SYNONYMS[key] in known:
        return SYNONYMS[key]
    found = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return found[0] if found else None


def _unknown(dotted: str, key: str, known: list[str]) -> ConfigError:
    near = _closest(key, known)
    hint = f"did you mean {dotted.rsplit('.', 1)[0] + '.' if '.' in dotted else ''}{near}? " if near else ""
    return ConfigError(f"unknown config key {dotted!r}: no config file declares it, so it would be ignored. "
                       f"{hint}Known keys here: {', '.join(sorted(known))}.\n"
                       f"  fix: drop the `+{dotted}=...` override or spell the key as the config files do")


def _walk(cfg: Mapping, node: Mapping, prefix: tuple[str, ...]) -> Iterator[ConfigError]:
    for key, value in cfg.items():
        key = str(key)
        path = (*prefix, key)
        if key not in node:
            yield _unknown(".".join(path), key, [str(k) for k in node])
            continue
        if path in FREE_FORM or path == ("hydra",):
            continue
        if path == ("method", "component") and isinstance(value, Mapping):
            allowed = component_keys().get(str(value.get("_target_")))
            if allowed is not None:
                for arg in value:
                    if arg not in allowed:
                        yield _unknown(f"method.component.{arg}", str(arg), sorted(allowed))
            continue
        child = node[key]
        if isinstance(value, Mapping) and isinstance(child, Mapping):
            yield from _walk(value, child, path)


def _container(cfg: Any) -> dict:
    if hasattr(cfg, "_metadata"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]
    return dict(cfg)


def _resolved(cfg: Any) -> dict:
    if hasattr(cfg, "_metadata"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def _enum(key: str, value: Any, allowed: tuple | list, extra: str = "") -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not allowed; use one of {', '.join(map(str, allowed))}{extra}")


def validate_config(cfg: Any) -> None:
    """Unknown keys and bad enumerations in a composed config, before anything is read or loaded."""
    from bench.backbones.loading import check_model_config
    from bench.lama import data as lama_data
    from bench.precision import DTYPE_CHOICES, DTYPES, FROZEN_CHOICES
    from bench.prompts import KINDS as TEMPLATE_KINDS
    from bench.prompts.verbalizer import MULTI_TOKEN_CHOICES
    from bench.superglue import data as sg
    from bench.train import OPTIMIZERS, SCHEDULES, WARMUP_RULES, accumulation_steps

    tree = _container(cfg)
    for error in _walk(tree, schema(), ()):
        raise error
    task, trainer, method = tree.get("task") or {}, tree.get("trainer") or {}, tree.get("method") or {}
    _enum("task.kind", task.get("kind"), TASK_KINDS)
    if task.get("kind") == "lama":
        _enum("task.variant", task.get("variant"), tuple(lama_data.VARIANTS))
    elif task.get("data_family") == "lm-bff":
        from bench.lmbff import data as kd

        _enum("task.variant", task.get("variant"), kd.VARIANTS)
        kd.canonical_task(str(task.get("dataset")))
    else:
        _enum("task.variant", task.get("variant"), tuple(sg.VARIANTS))
        sg.canonical_task(str(task.get("dataset")))
    _enum("task.choice_loss", task.get("choice_loss", "ce"), ("ce", "hinge", "hinge_batch", "pet_record"))
    _enum("task.copa_classifier_inputs", task.get("copa_classifier_inputs", "choices"), ("choices", "pet_pair"))
    _enum("task.train_choice_masks", task.get("train_choice_masks", "own"), ("own", "longest"))
    _enum("task.segment_ids", task.get("segment_ids", "tokenizer"), ("tokenizer", "pet"))
    _enum("task.tokenization", task.get("tokenization", "fast"), ("fast", "pet_slow"))
    _enum("task.sep", task.get("sep", "pair"), ("pair", "text"))
    _enum("task.wsc_pad_draws", task.get("wsc_pad_draws", "per_example"), ("per_example", "pet"))
    _enum("task.eval_choice_masks", task.get("eval_choice_masks", "own"), ("own", "trim_longest"))
    _enum("task.truncation_budget", task.get("truncation_budget", "full"), ("full", "ptfewshot"))
    _enum("trainer.schedule", trainer.get("schedule", "constant"), SCHEDULES)
    _enum("trainer.optimizer", str(trainer.get("optimizer", "adamw")).lower(), OPTIMIZERS)
    _enum("trainer.warmup_rule", trainer.get("warmup_rule", "suite"), WARMUP_RULES)
    _enum("dtype", tree.get("dtype", "auto"), (*DTYPE_CHOICES, *DTYPES), " (auto: bf16 on GPUs with bf16, else fp32)")
    _enum("frozen_dtype", tree.get("frozen_dtype", "auto"), FROZEN_CHOICES,
          " (auto: a frozen backbone is stored in the compute dtype)")
    _enum("method.multi_token", method.get("multi_token", "refuse"), MULTI_TOKEN_CHOICES)
    _enum("template.kind", (tree.get("template") or {}).get("kind"), TEMPLATE_KINDS)
    device = str(tree.get("device", "auto"))
    if device.split(":")[0] not in ("auto", "cpu", "cuda", "mps") or (device == "auto" and ":" in device):
        raise ConfigError(f"device={device!r} is not allowed; use auto, cpu, cuda, cuda:<index> or mps")
    if "model" in tree:
        check_model_config(tree["model"], source=f"conf/model/{tree['model'].get('name')}.yaml")
    for key in ("lr", "batch_size", "max_epochs"):
        value = trainer.get(key)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool) or value <= 0):
            raise ConfigError(f"trainer.{key}={value!r} must be a positive number")
    accumulation_steps(trainer)  # trainer.grad_accumulation_steps: a whole number >= 1


# preflight: inputs and outputs ------------------------------------------------------------------
def check_writable(folder: Path, what: str) -> None:
    """Create ``folder``, write and delete a probe file in it, then remove the folders it created."""
    probe = folder / f".write-probe-{os.getpid()}"
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        for attempt in range(3):  # a parallel job may remove a folder it created between our mkdir and write
            folder.mkdir(parents=True, exist_ok=True)
            try:
                probe.write_bytes(b"probe")
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"{what} {folder} is not writable ({err.strerror or err}); the run would be lost at the end.\n"
                          "  fix: point paths.results_dir at a writable folder (or BENCH_RESULTS_DIR), or fix its "
                          "permissions") from None
    for path in created:  # innermost first: a run that fails later leaves no empty folders behind
        try:
            path.rmdir()
        except OSError:  # a parallel job wrote into it meanwhile (a worker pool): it stays, and so do its parents
            break


def _hidden_size(model_cfg: Mapping) -> int | None:
    """The model's width from its build recipe or its cached ``config.json`` (None when unknown)."""
    build = model_cfg.get("build") or {}
    if build.get("hidden_size"):
        return int(build["hidden_size"])
    from bench.backbones.hub import cached_snapshot, hf_cache_dir

    folder = Path(str(model_cfg["path"])) if model_cfg.get("path") else cached_snapshot(
        str(model_cfg.get("hub_id")), model_cfg.get("revision") or "main", hf_cache_dir())
    if folder is None or not (Path(folder) / "config.json").is_file():
        return None
    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    width = next((config[k] for k in ("hidden_size", "d_model", "n_embd") if k in config), None)
    return int(width) if width else None


def check_results_folder(cfg: Mapping, method) -> None:
    """Probe writes into ``runs/<task>`` and ``failed/``; enough free space for the record and artifacts."""
    results = Path(str(cfg["paths"]["results_dir"]))
    check_writable(results / "runs" / str(cfg["task"]["name"]), "results folder")
    check_writable(results / "failed", "failure-record folder")
    needed = MIN_FREE_BYTES
    hidden = _hidden_size(cfg["model"])
    if cfg["task"]["kind"] == "lama" and method.trains and hidden:
        needed += 41 * 4 * 16 * hidden * hidden  # per relation: a prompt encoder of ~16 h^2 float32 weights
    free = shutil.disk_usage(next(p for p in (results, *results.parents) if p.exists())).free
    if free < needed:
        raise ConfigError(f"results folder {results} has {free / 2**20:.0f} MiB free; this run needs about "
                          f"{needed / 2**20:.0f} MiB for its record and artifacts.\n"
                          "  fix: free disk space or point paths.results_dir at a larger disk")


def _lama_inputs(cfg: Mapping, method) -> None:
    from bench.lama import data as lama_data
    from bench.lama.runner import relation_templates

    task, root = cfg["task"], Path(str(cfg["paths"]["data_dir"]))
    relations = lama_data.select_relations(task.get("relations", "all"), root)
    lama_data.load_vocab(task["variant"], cfg["model"]["lama_vocab_key"], root)
    trains = method.trains
    splits = list(dict.fromkeys([*(["train", task["selection_split"]] if trains else []), *task["eval_splits"]]))
    for relation in relations:
        for split in splits:
            lama_data.load_facts(relation, split, task["variant"], root,  # DataError names file, line, field
                                 train_facts=lama_data.train_facts_of(task))
    templates, _ = relation_templates(cfg["template"], relations, cfg["model"]["family"] if trains else None)
    where = f"conf/template/{cfg['template'].get('name')}.yaml"
    for relation, template in templates.items():
        check_template(template, f"{where} ({relation})", {"x"})


class _Unattached:
    """A method seen before ``setup``: its template is taken as written (``adapt_template`` builds
    modules on a backbone); everything else is the method's."""

    def __init__(self, method) -> None:
        self._method = method

    def adapt_template(self, template):
        return template

    def __getattr__(self, name: str) -> Any:
        return getattr(self._method, name)


def _task_run_line(task_cfg: Mapping) -> str:
    """The template= part of the task file's ``# Run:`` line (every task YAML opens with one), as a hint."""
    for path in sorted((CONF_DIR / "task").glob("*.yaml")):
        lines = path.read_text(encoding="utf-8").splitlines()
        if lines and lines[0].startswith("# Run:") and _yaml(path).get("name") == task_cfg.get("name"):
            hint = [w for w in lines[0].split() if w.startswith(("template=", "trainer=", "seed="))]
            return f"add {' '.join(hint)} (from {path.relative_to(REPO_ROOT)})" if hint else f"see {path}"
    return "pick a template of this task (conf/template/)"


def _classification_inputs(cfg: Mapping, method, tokenizer) -> None:
    from hydra.utils import get_method

    from bench.superglue.task import ClassificationTask

    family = cfg["model"]["family"]
    template_cfg = cfg.get("template") or {}
    if template_cfg.get("kind") == "prompt_set" and method.output_space != "labels":
        raise ConfigError(f"template={template_cfg.get('name')} is LAMA's per-relation prompt set; task="
                          f"{cfg['task']['name']} needs one of its own patterns.\n  fix: {_task_run_line(cfg['task'])}")
    stub = SimpleNamespace(family=family, tokenizer=tokenizer, device=None, name=cfg["model"]["name"])
    task_class = getattr(get_method(str(cfg["task"]["runner"])), "task_class", ClassificationTask)  # the runner's
    task = task_class(cfg, stub, _Unattached(method))  # template count, left-to-right rule, label words
    splits = list(task.eval_splits)
    if method.trains or method.uses_demonstrations:
        splits.insert(0, "train")
    if task.selection_split is not None and task.selection_split == task.report_split and \
            not cfg["task"].get("allow_val_selection"):  # P-Tuning v2's code behaviour, only under its flag
        raise ConfigError(f"task.selection_split and task.report_split are both {task.report_split!r}: the report "
                          "would be chosen on itself.\n  fix: select on dev32 (fewglue) or heldout (superglue)")
    for split in dict.fromkeys(splits):
        examples = task.examples(split)  # DataError names the missing or malformed file
        if task.template is None or not examples:
            continue
        where = f"conf/template/{cfg['template'].get('name')}.yaml (rank {cfg['template'].get('rank')})"
        check_template(task.template, where, set(examples[0].fields))
        if task.answer_field and task.answer_field not in examples[0].fields:
            raise ConfigError(f"{where}: answer_field {task.answer_field!r} is not a field of {task.task}; "
                              f"available: {', '.join(sorted(examples[0].fields))}")
        task._item(examples[0], train=split == "train")  # renders one input end to end


def preflight(cfg: Any, method=None) -> None:
    """Everything about a run that can fail before its weights load, checked now (see module doc)."""
    from hydra.utils import instantiate

    from bench.backbones.loading import load_tokenizer
    from bench.device import check_device, pick_device
    from bench.precision import compute_dtype

    tree = _resolved(cfg)
    if method is None:
        method = instantiate(tree["method"]["component"])
    device = pick_device(str(tree.get("device", "auto")))
    check_device(device)
    compute_dtype(device, tree.get("dtype", "auto"))
    check_results_folder(tree, method)
    data = Path(str(tree["paths"]["data_dir"]))
    if not data.is_dir():
        raise DataError("the data folder does not exist", file=data,
                        fix="set paths.data_dir (or BENCH_DATA_DIR) to the folder `make data` wrote, or run `make data`")
    if tree["task"]["kind"] == "lama":
        _lama_inputs(tree, method)
        return
    tokenizer = load_tokenizer(tree["model"], tree["paths"].get("models_dir"))
    if tokenizer is not None:
        _classification_inputs(tree, method, tokenizer)
        return
    from bench.superglue import data as sg  # no tokenizer yet (a mini model to build): the data files only

    task = tree["task"]
    if task.get("data_family") == "lm-bff":
        from bench.lmbff import data as kd

        for split in ("train", "dev", "test"):
            kd.load_split(task["dataset"], split, int(tree["seed"]), root=data, limit=task.get("limit"),
                          test_file=task.get("test_file"), variant=str(task.get("variant") or "k16"))
        return
    for split in dict.fromkeys(["train", *sg.VARIANTS[task["variant"]][1:3]]):
        sg.load_split(task["dataset"], split, task["variant"], root=data, limit=task.get("limit"))
