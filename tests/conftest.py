"""Shared fixtures. `tiny_backbone(name)` gives a tiny offline model, built once into bench.paths.models_dir()."""

from __future__ import annotations

import os

import pytest

# Under pytest-xdist (`make test`: 2 workers on CI's 2 cores) each worker, and every run it starts, uses one
# intra-op thread: two workers at the default thread count would oversubscribe the cores. Set before torch loads.
if os.environ.get("PYTEST_XDIST_WORKER") is not None:
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")


@pytest.fixture(scope="session")
def tiny_backbone():
    """Factory: tiny_backbone("tiny-bert") -> Backbone on CPU/fp32, loaded once per session.

    The first call per name builds the model when data/models has no current build (reused across
    sessions). The same object is handed to every test: deep-copy it before training it.
    """
    from bench.backbones import load_backbone, load_model_config

    loaded = {}

    def get(name: str = "tiny-bert"):
        if name not in loaded:
            loaded[name] = load_backbone(load_model_config(name), device="cpu", dtype="fp32")
        return loaded[name]

    return get


@pytest.fixture(scope="session", autouse=True)
def prepared_data(tmp_path_factory):
    """Prepare data/ from the local mirror once per session (a no-op when it is up to date), so a
    clean clone with ../shared beside it tests against the real data instead of skipping.

    Under pytest-xdist (`make test` runs `-n 2`) the workers take turns (a lock file in the run's
    shared temp folder), and the first also builds the tiny models, so that no two workers write
    the same data file or model snapshot at once.
    """
    import fcntl
    import os

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        _prepare(build_tiny=False)
        return
    with (tmp_path_factory.getbasetemp().parent / "prepared_data.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        _prepare(build_tiny=True)


def _prepare(build_tiny: bool) -> None:
    import importlib

    from bench.paths import mirror_dir
    from data_prep import FAMILIES

    if mirror_dir() is not None:
        for name in FAMILIES:
            importlib.import_module(f"data_prep.{name}").prepare(None, None, False, quiet=True)
    if build_tiny:
        from bench.backbones.configs import MODEL_CONF_DIR, load_model_config
        from bench.errors import DataError
        from bench.models.tiny import ensure_built, is_random_build

        for path in sorted(MODEL_CONF_DIR.glob("*.yaml")):
            if is_random_build(cfg := load_model_config(path.stem)):
                try:
                    ensure_built(cfg)
                except DataError:  # no evidence sentences: each test that needs a model says so itself
                    break


@pytest.fixture(scope="session")
def lama_data():
    """The LAMA relation ids of the prepared data; skips when data/lama is not prepared."""
    from bench.errors import DataError
    from bench.lama.data import relation_ids

    try:
        return relation_ids()
    except DataError as err:
        pytest.skip(f"real LAMA data is not prepared (run `python -m data_prep lama`): {err}")


@pytest.fixture
def lama_data_copy(tmp_path, lama_data):
    """A data dir (tmp_path/data) linking the prepared data, whose lama/prompts/ folder takes new prompt sets
    (searched sets already in the prepared folder are left out, so a test sees only its own)."""
    from bench.paths import data_dir

    root = tmp_path / "data"
    (root / "lama" / "prompts").mkdir(parents=True)
    for entry in (data_dir() / "lama").iterdir():
        if entry.name != "prompts":
            (root / "lama" / entry.name).symlink_to(entry)
    for entry in (data_dir() / "lama" / "prompts").iterdir():
        if not entry.name.startswith("autoprompt_search_"):
            (root / "lama" / "prompts" / entry.name).symlink_to(entry)
    for entry in data_dir().iterdir():
        if entry.name != "lama":
            (root / entry.name).symlink_to(entry)
    return root


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny forward passes: one torch thread avoids the sync cost of several on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test`), files whose tests are all `slow` go first, then files with some,
    each kept whole and in order, so that the long ones (the mini-world build, the study runs) do not
    start last beside an idle worker."""
    import os

    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return
    slow: dict[str, set[bool]] = {}
    for item in items:
        slow.setdefault(item.nodeid.split("::")[0], set()).add(item.get_closest_marker("slow") is not None)
    rank = {file: 0 if marks == {True} else 1 if True in marks else 2 for file, marks in slow.items()}
    items.sort(key=lambda item: rank[item.nodeid.split("::")[0]])
