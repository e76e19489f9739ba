"""Hugging Face hub-cache helpers: where the cache is, what is in it, whether the hub can be reached."""

from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

HEX40 = re.compile(r"^[0-9a-f]{40}$")
TRUTHY = {"1", "true", "yes", "on"}


def hf_cache_dir() -> Path:
    """The hub cache as the environment says now (HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub).

    Read at call time, not import time, so a changed HF_HOME/HF_HUB_CACHE takes effect at once.
    """
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def repo_folder(hub_id: str, cache_dir: str | Path) -> Path:
    """<cache>/models--<org>--<name>, the folder the hub cache keeps a model repo in."""
    return Path(cache_dir) / ("models--" + hub_id.replace("/", "--"))


def resolve_cached_revision(hub_id: str, revision: str | None, cache_dir: str | Path) -> str | None:
    """The commit a revision (sha, branch or tag) points at in the cache, or None when it is not there."""
    repo = repo_folder(hub_id, cache_dir)
    revision = revision or "main"
    if HEX40.match(revision):
        return revision if (repo / "snapshots" / revision).is_dir() else None
    ref = repo / "refs" / revision
    if not ref.is_file():
        return None
    commit = ref.read_text(encoding="utf-8").strip()
    return commit if (repo / "snapshots" / commit).is_dir() else None


def cached_snapshot(hub_id: str, revision: str | None, cache_dir: str | Path) -> Path | None:
    """The snapshot folder of (hub_id, revision) when it holds at least config.json, else None."""
    commit = resolve_cached_revision(hub_id, revision, cache_dir)
    if commit is None:
        return None
    snapshot = repo_folder(hub_id, cache_dir) / "snapshots" / commit
    return snapshot if (snapshot / "config.json").is_file() else None


def has_weights(folder: Path) -> bool:
    """Whether a model folder holds weights (safetensors or PyTorch .bin, sharded or not)."""
    patterns = ("model.safetensors", "model-*.safetensors", "pytorch_model.bin", "pytorch_model-*.bin",
                "model.safetensors.index.json", "pytorch_model.bin.index.json")
    return any(any(folder.glob(pattern)) for pattern in patterns)


def offline_reason() -> str | None:
    """Why the hub must not be contacted (an *_OFFLINE variable is set), or None."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in TRUTHY:
            return f"{name}={os.environ[name]} is set"
    return None


def _endpoint() -> tuple[str, int, str]:
    """(host, port, label) to probe: the HTTPS proxy when one is set, else the hub endpoint."""
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy:
        parsed = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        return parsed.hostname or "", parsed.port or 3128, f"proxy {parsed.hostname}:{parsed.port or 3128}"
    parsed = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    return parsed.hostname or "huggingface.co", port, f"{parsed.hostname}:{port}"


def hub_reachable(timeout: float = 3.0) -> tuple[bool, str]:
    """(reachable, reason): an *_OFFLINE variable, else one TCP connect to the hub (or proxy) within `timeout`.

    Runs in a daemon thread so that a slow DNS lookup cannot hold the caller past the timeout.
    """
    reason = offline_reason()
    if reason:
        return False, reason
    host, port, label = _endpoint()
    outcome: dict[str, object] = {}

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome["ok"] = True
        except OSError as err:
            outcome["error"] = err

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    if outcome.get("ok"):
        return True, f"connected to {label}"
    if "error" in outcome:
        return False, f"cannot connect to {label} ({outcome['error']})"
    return False, f"no answer from {label} within {timeout:.0f}s"
