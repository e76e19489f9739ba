"""The reference's own environment: its Python and pinned libraries, and the checkout at its commit.

References pin old libraries (transformers 3.x / 4.11, old torch), so their code runs in a
virtual environment of its own, built from the package registries with a pyenv Python, never
in the suite's. Nothing of the reference is copied here: the user passes a local checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError, ConfigError


@dataclass(frozen=True)
class RefSpec:
    """What a reference needs: its repository, the commit the goldens come from, Python, packages."""

    name: str  # short name, also the venv folder name
    repo: str  # owner/name on GitHub, for the error that says how to get it
    commit: str  # full or abbreviated commit the goldens were made from
    python: str  # a pyenv version prefix, e.g. "3.7"
    requirements: tuple[str, ...]  # pip requirement strings, pinned
    patches: tuple[str, ...] = ()  # one line per runtime patch: what and why (listed in docs/parity.md)


def venv_root() -> Path:
    """Where reference environments live (``BENCH_PARITY_HOME``, default ``~/.cache/bench-parity``)."""
    return Path(os.environ.get("BENCH_PARITY_HOME", Path.home() / ".cache" / "bench-parity"))


def find_python(prefix: str) -> Path:
    """The newest installed pyenv Python whose version starts with ``prefix`` (e.g. "3.7")."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(
        (p for p in root.glob(f"{prefix}.*") if (p / "bin" / "python").exists()),
        key=lambda p: tuple(int(x) for x in p.name.split(".") if x.isdigit()),
    )
    if not found:
        raise BenchError(
            f"no Python {prefix}.x for the reference environment under {root}\n"
            f"  fix: `pyenv install {prefix}` (or set PYENV_ROOT to where one is installed)"
        )
    return found[-1] / "bin" / "python"


def ensure_venv(spec: RefSpec, quiet: bool = True) -> Path:
    """Create (once) the reference's venv with its pinned packages; returns its python."""
    target = venv_root() / spec.name
    python = target / "bin" / "python"
    stamp = target / ".requirements"
    wanted = "\n".join(spec.requirements) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(find_python(spec.python)), "-m", "venv", str(target)], check=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"] + (["-q"] if quiet else [])
    print(f"[parity] building {spec.name}'s environment in {target} ({len(spec.requirements)} packages)", file=sys.stderr)
    subprocess.run(pip + list(spec.requirements), check=True)
    stamp.write_text(wanted)
    return python


def check_checkout(ref: Path, spec: RefSpec) -> str:
    """Refuse a checkout that is missing or at another commit than the goldens'; returns its HEAD."""
    if not ref.is_dir():
        raise ConfigError(
            f"reference checkout {ref} not found\n  fix: clone https://github.com/{spec.repo} and "
            f"`git checkout {spec.commit}`, then pass --ref /path/to/it"
        )
    try:
        head = subprocess.run(
            ["git", "-C", str(ref), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        raise ConfigError(
            f"{ref} is not a git checkout, so its commit cannot be checked\n"
            f"  fix: pass a clone of {spec.repo} at {spec.commit}"
        ) from None
    if not head.startswith(spec.commit) and not spec.commit.startswith(head):
        raise ConfigError(
            f"{ref} is at {head[:12]}, the goldens were made from {spec.repo}@{spec.commit}\n"
            f"  fix: `git -C {ref} checkout {spec.commit}`"
        )
    return head


def run_ref_script(
    python: Path, script: Path, args: Sequence[str], ref: Path, env: dict[str, str] | None = None
) -> None:
    """Run a ``*_ref.py`` script in the reference's environment with the checkout on ``PYTHONPATH``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    full_env.update({"PYTHONPATH": str(ref), "PYTHONHASHSEED": "0", "CUDA_VISIBLE_DEVICES": ""})
    full_env.update(env or {})
    subprocess.run([str(python), str(script), *args], check=True, env=full_env, cwd=str(ref))
