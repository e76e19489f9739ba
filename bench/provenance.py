"""Provenance for run records: code version, packages, data checksums, machine."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from bench.paths import REPO_ROOT

PACKAGES = ("bench", "torch", "transformers", "tokenizers", "sentencepiece", "datasets", "evaluate",
            "pandas", "hydra-core", "numpy")


def git_state(root: Path = REPO_ROOT) -> dict:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def data_checksums(data_dir: Path, family: str) -> dict:
    """The prepared family's MANIFEST digest plus its per-output checksums."""
    manifest = Path(data_dir) / family / "MANIFEST.json"
    if not manifest.is_file():
        return {"manifest": None}
    raw = manifest.read_bytes()
    content = json.loads(raw)
    outputs = content.get("outputs", {})
    return {"manifest": str(manifest), "manifest_sha256": hashlib.sha256(raw).hexdigest(),
            "n_outputs": len(outputs)}


def machine(device) -> dict:
    info = {"device": str(device), "python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}
    try:
        import torch

        if getattr(device, "type", str(device)) == "cuda":
            info["gpu"] = torch.cuda.get_device_name(device)
        info["torch_threads"] = torch.get_num_threads()
    except Exception:  # noqa: BLE001 - provenance must never fail a finished run
        pass
    return info
