"""Every command the README shows is run here in its smoke form, so an example cannot rot (issue 27, Found 1).

``SMOKE`` maps each README command (the lines of its ```bash blocks and the inline `make ...` /
`python -m ...` spans) to what this test does with it: ``run`` it with ``debug=smoke`` and one relation
into a temporary results folder, ``call`` the module's ``main`` as the command would, ``compose`` every
job it would launch without loading weights (``study``: ``bench.study status``, which composes and checks
every job of the first preset), or ``skip`` it with the reason (GPU, hub weights, network, a timing).
A ``make`` command's recipe is expanded with ``make -n`` and must contain the module command the test
runs in its place. A README command missing from ``SMOKE`` fails the first test: add its smoke form.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass

import pytest
from hydra import compose, initialize_config_dir

from bench.paths import REPO_ROOT, data_dir, mirror_dir, models_dir

README = REPO_ROOT / "README.md"
SMOKE_RUN = ["debug=smoke", "task.relations=[P17]", "device=cpu", "dtype=fp32"]
HUB = "needs hub weights (not on CI or this machine)"


@dataclass(frozen=True)
class Smoke:
    kind: str  # run | call | compose | study | cli | after_sweep | skip
    args: tuple = ()
    make: str | None = None  # a make command: the module command its recipe must contain (make -n)
    why: str = ""  # compose / study / skip: why it is not run in full


def study(name: str, models: str, why: str, make: str | None = None) -> Smoke:
    return Smoke("study", (name, models), make=make, why=why)


SMOKE: dict[str, Smoke] = {
    "make reproduce-lama": study("lama", "bert-base-cased", HUB, make="bench.study run lama --launcher basic"),
    "make test": Smoke("skip", why="the test suite itself"),
    "make test-gpu": Smoke("skip", why="needs a CUDA GPU (tests/test_gpu.py skips without one)",
                           make="tests/test_gpu.py"),
    "make reproduce-lama MODELS=tiny-bert,tiny-gpt2": study(
        "lama", "tiny-bert,tiny-gpt2", "the whole study takes minutes; test_readme runs its first presets' jobs",
        make="bench.study run lama --models tiny-bert,tiny-gpt2"),
    "make reproduce-lama MODELS=mini-bert,mini-gpt2": study(
        "lama", "mini-bert,mini-gpt2", "mini models are pretrained on first use (about 35 min each)",
        make="bench.study run lama --models mini-bert,mini-gpt2"),
    "uv venv .venv && uv pip install -p .venv/bin/python torch --index-url https://download.pytorch.org/whl/cu124":
        Smoke("skip", why="installs CUDA torch from the network"),
    "make setup": Smoke("skip", why="installs the project; this test runs inside the installed .venv"),
    ".venv/bin/python -m bench.run task=lama model=tiny-bert method=manual template=lama": Smoke(
        "run", ("task=lama", "model=tiny-bert", "method=manual", "template=lama")),
    ".venv/bin/python -m bench.run task=lama29k model=tiny-roberta method=manual template=lpaqa": Smoke(
        "run", ("task=lama29k", "model=tiny-roberta", "method=manual", "template=lpaqa")),
    ".venv/bin/python -m bench.run experiment=lama34k_manual model=bert-large-cased model.path=/weights/bert-large-cased":
        Smoke("compose", ("experiment=lama34k_manual", "model=bert-large-cased",
                          "model.path=/weights/bert-large-cased"), why=HUB),
    "make tables": Smoke("call", ("bench.tables",), make="bench.tables"),
    "make figures": Smoke("call", ("bench.tables.figures",), make="bench.tables.figures"),
    "make help": Smoke("cli", ("make", "help")),
    "make reproduce-lama MODELS=tiny-bert,tiny-gpt2 LAUNCHER=local": study(
        "lama", "tiny-bert,tiny-gpt2 hydra/launcher=local", "worker processes; composed with the local launcher",
        make="bench.study run lama --models tiny-bert,tiny-gpt2 --launcher local"),
    'make reproduce-lama MODELS=bert-large-cased LAUNCHER=slurm ARGS="hydra.launcher.partition=gpu '
    'hydra.launcher.timeout_min=600"': study(
        "lama", "bert-large-cased hydra/launcher=slurm hydra.launcher.partition=gpu hydra.launcher.timeout_min=600",
        "needs a SLURM cluster and hub weights", make="--launcher slurm hydra.launcher.partition=gpu"),
    "python -m bench.prompts.show template=lama model=tiny-bert relation=P17": Smoke(
        "call", ("bench.prompts.show", "template=lama", "model=tiny-bert", "relation=P17")),
    "make data": Smoke("call", ("data_prep", "all", "--quiet"), make="data_prep all"),
    "python -m data_prep all": Smoke("call", ("data_prep", "all", "--quiet")),
    "python -m data_prep <family> --force": Smoke(  # the smallest family, into a folder of its own
        "call", ("data_prep", "lm_bff", "--force", "--quiet", "--out", "{tmp}/data")),
    "make mini-models": Smoke("skip", why="pretrains two models, about 35 min each (tests/test_mini_models.py "
                                          "trains the reduced one)"),
    "make reproduce-<study> MODELS=a,b": study("lama", "tiny-bert", "a placeholder: shown with lama on tiny-bert",
                                               make="bench.study run <study> --models a,b"),
    "python -m bench.study run <study> --models a,b": study("lama", "tiny-bert",
                                                            "a placeholder: shown with lama on tiny-bert"),
    "python -m bench.study run <study> --seeds 42": study("lama", "tiny-bert", "a placeholder: shown with lama on "
                                                         "tiny-bert; --seeds itself: tests/test_study_stages.py"),
    "make status-lama MODELS=a,b": study("lama", "tiny-bert", "a placeholder: shown with tiny-bert",
                                         make="bench.study status lama --models a,b"),
    "python -m bench.study status lama --models a,b": study("lama", "tiny-bert", "status itself composes"),
    "python -m bench.study status": Smoke("call", ("bench.study", "status")),
    "python -m bench.run -m task=cb model=tiny-albert method=pet template=pet_cb debug=smoke trainer.lr=1e-4,1e-3":
        Smoke("cli", (sys.executable, "-m", "bench.run", "-m", "task=cb", "model=tiny-albert", "method=pet",
                      "template=pet_cb", "debug=smoke", "trainer.lr=1e-4,1e-3", "device=cpu")),
    "python -m bench.predictions compare A B [--split val]": Smoke(
        "after_sweep", why="compares the two records the README's sweep leaves (in test_shell_commands)"),
    "make reproduce-lama MODELS=bert-base-cased,roberta-base,gpt2-medium": study(
        "lama", "bert-base-cased,roberta-base,gpt2-medium", HUB,
        make="bench.study run lama --models bert-base-cased,roberta-base,gpt2-medium"),
    "make bench": Smoke("skip", why="a timing at the papers' sizes (minutes); tests/test_speed.py runs its code"),
    "python -m bench.speed --size bert-base-cased": Smoke("skip", why="a timing (make bench)"),
    "make bench BENCH_DEVICE=cuda BENCH_SIZE=paper": Smoke("skip", why="needs a GPU"),
    "python -m bench.speed.stage DEST": Smoke("call", ("bench.speed.stage", "{tmp}/stage")),
    "make bench-lama": Smoke("skip", why="a timing (tests/test_bench_lama.py runs its code)"),
    "python -m bench.tables": Smoke("call", ("bench.tables",)),
    "python -m bench.tables.figures": Smoke("call", ("bench.tables.figures",)),
    'uv pip install -p .venv/bin/python -e ".[notebook]"': Smoke("skip", why="installs packages"),
    ".venv/bin/jupyter notebook notebooks/results.ipynb": Smoke(
        "skip", why="interactive; tests/test_notebook.py executes the notebook"),
    "make reproduce-fewglue": study("fewglue", "albert-xxlarge-v2", HUB, make="bench.study run fewglue"),
    "make reproduce-superglue": study("superglue", "bert-base-cased", HUB, make="bench.study run superglue"),
    "make reproduce-superglue-frozen": study("superglue_frozen", "bert-large-cased", HUB,
                                             make="bench.study run superglue_frozen"),
    "make reproduce-superglue MODELS=bert-base-cased,gpt2": study(
        "superglue", "bert-base-cased,gpt2", HUB, make="bench.study run superglue --models bert-base-cased,gpt2"),
    "make reproduce-superglue-frozen MODELS=bert-large-cased,roberta-large": study(
        "superglue_frozen", "bert-large-cased,roberta-large", HUB,
        make="bench.study run superglue_frozen --models bert-large-cased,roberta-large"),
    "python -m data_prep superglue --full --download": Smoke("skip", why="downloads from the network"),
    "make check-learning": Smoke("skip", why="real pretrained weights, tens of minutes (BENCH_REAL=1)"),
    "make reproduce-lmbff": study("lmbff", "roberta-large", HUB, make="bench.study run lmbff"),
    "make reproduce-lester": study("lester", "t5-small-lm-adapt", HUB, make="bench.study run lester"),
    "make reproduce-lester MODELS=t5-small-lm-adapt,t5-base-lm-adapt": study(
        "lester", "t5-small-lm-adapt,t5-base-lm-adapt", HUB,
        make="bench.study run lester --models t5-small-lm-adapt,t5-base-lm-adapt"),
    # named in the README as the offline smoke runs of two studies
    "make reproduce-fewglue MODELS=tiny-albert": study("fewglue", "tiny-albert", "composed (a study run takes minutes)",
                                                       make="bench.study run fewglue --models tiny-albert"),
    "make reproduce-lmbff MODELS=tiny-roberta": study("lmbff", "tiny-roberta", "composed (a study run takes minutes)",
                                                      make="bench.study run lmbff --models tiny-roberta"),
}
ALSO_SHOWN = {"make reproduce-fewglue MODELS=tiny-albert", "make reproduce-lmbff MODELS=tiny-roberta"}


def readme_commands(text: str) -> list[str]:
    """Lines of the ```bash blocks (comments dropped) and inline spans that start with a command."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        found += [line.split(" #")[0].strip() for line in block.splitlines() if line.split(" #")[0].strip()]
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    found += [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", prose)
              if " ".join(s.split()).startswith(("make ", "python -m ", ".venv/bin/", "uv "))]
    return list(dict.fromkeys(found))


def test_every_readme_command_has_a_smoke_form():
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert [c for c in commands if c not in SMOKE] == [], "add these README commands to SMOKE"
    assert [c for c in SMOKE if c not in commands and c not in ALSO_SHOWN] == [], "stale SMOKE entries"
    assert {"make reproduce-fewglue", "make reproduce-lmbff"} <= set(commands)  # the ALSO_SHOWN studies' own


def test_the_sweep_example_names_the_tasks_template():
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert "task=cb model=tiny-albert method=pet template=pet_cb debug=smoke" in text


@pytest.mark.parametrize("command", [c for c, s in SMOKE.items() if s.make])
def test_make_recipes_run_the_module_command_this_test_runs(command):
    words = shlex.split(command)
    env = {**os.environ, "ARGS": "", "MODELS": ""}
    env = {k: v for k, v in env.items() if k not in ("ARGS", "MODELS")}  # only what the command sets
    out = subprocess.run(["make", "-n", *words[1:]], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert SMOKE[command].make in " ".join(out.stdout.split())


def _compose(tmp_path, overrides):
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=[*overrides, f"paths.root={REPO_ROOT}",
                                                        f"paths.data_dir={data_dir()}", f"paths.models_dir={models_dir()}",
                                                        f"paths.results_dir={tmp_path / 'results'}"])


@pytest.fixture(scope="module")
def lama_records(tmp_path_factory, lama_data):
    """The README's first bench.run command in its smoke form; its records feed the tables and figures."""
    from bench.run import execute

    tmp = tmp_path_factory.mktemp("readme")
    record = execute(_compose(tmp, ["task=lama", "model=tiny-bert", "method=manual", "template=lama", *SMOKE_RUN]))
    return tmp / "results", record


def _by_kind(kind):
    return [pytest.param(c, id=c[:80]) for c, s in SMOKE.items() if s.kind == kind]


@pytest.mark.parametrize("command", _by_kind("run"))
def test_run_commands(command, tmp_path, lama_records, tiny_backbone):
    from bench.run import execute

    smoke = SMOKE[command]
    tiny_backbone(next(a.split("=")[1] for a in smoke.args if a.startswith("model=")))
    path = execute(_compose(tmp_path, [*smoke.args, *SMOKE_RUN]))
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["status"] == "finished" and record["spec"]["tag"] == "smoke"
    assert record["metrics"]["test"]["groups"]["P17"]["n"] > 0
    integrity = record["provenance"]["data"]["integrity"]  # the prepared data were checked against the MANIFEST
    assert integrity["verified"] is True and integrity["files"] > 0


@pytest.mark.parametrize("command", _by_kind("compose"))
def test_commands_that_need_weights_compose_and_validate(command, tmp_path):
    from bench.checks import validate_config

    validate_config(_compose(tmp_path, SMOKE[command].args))


@pytest.mark.parametrize("command", _by_kind("study"))
def test_study_commands_compose_every_job_of_their_first_preset(command, tmp_path, capsys):
    from bench.study import load_study, main

    name, rest = SMOKE[command].args
    models, *overrides = rest.split()
    first = load_study(name)["presets"][0]
    code = main(["status", name, "--models", models, "--presets", first, f"paths.results_dir={tmp_path}", *overrides])
    out = capsys.readouterr().out
    assert code == 0 and "missing" in out, out


@pytest.mark.parametrize("command", _by_kind("call"))
def test_module_commands(command, tmp_path, lama_records, capsys, monkeypatch):
    import importlib

    results, _ = lama_records
    module, *args = (a.format(tmp=tmp_path) for a in SMOKE[command].args)
    if module == "data_prep" and mirror_dir() is None:
        pytest.skip("no local mirror (../shared/data): data_prep would download")
    if module in ("bench.tables", "bench.tables.figures"):
        args += ["--results", str(results), "--out", str(tmp_path / "out")]
    if module == "bench.study":
        args += ["--results", str(results)]
    entry = {"bench.tables": "bench.tables.__main__", "data_prep": "data_prep.__main__"}.get(module, module)
    main = importlib.import_module(entry).main
    assert main(args) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    if module in ("bench.tables", "bench.tables.figures"):
        assert list((tmp_path / "out").iterdir()), out  # something was built from the smoke record
    if module == "bench.study":
        assert "finished records" in out


@pytest.mark.slow
@pytest.mark.parametrize("command", _by_kind("cli"))
def test_shell_commands(command, tmp_path):
    argv = SMOKE[command].args
    out = subprocess.run(list(argv), capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
                         env={**os.environ, "BENCH_RESULTS_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    if "bench.run" in argv:  # the sweep: one record per grid point, which the README's compare then reads
        from bench.predictions import main as predictions

        records = sorted((tmp_path / "runs" / "cb").glob("*.json"))
        assert len(records) == 2
        assert predictions(["compare", *map(str, records), "--split", "val"]) == 0
    else:
        assert "reproduce-%" in out.stdout


def test_skipped_commands_say_why():
    assert all(s.why for s in SMOKE.values() if s.kind in ("skip", "compose", "study", "after_sweep"))
