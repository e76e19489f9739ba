"""Hydra entry point: ``python -m bench.run task=lama model=tiny-bert method=manual template=lama``.

One call = one job (``bench.job``): one record per prompt rank under ``results/runs/<task>/``, named
from the spec and the hash of its result-relevant config, so every point of a multirun
(``-m trainer.lr=1e-4,1e-3``) gets its own record. A run whose finished record exists is skipped
(``force=true`` reruns it and keeps the old record as a ``.bak``). ``hydra/launcher=`` picks where
the jobs of a multirun go: this process (basic), a local worker pool (``local``) or SLURM (``slurm``).
Nothing in the package imports this module.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from bench.errors import BenchError
from bench.job import JobFailed, run_job

log = logging.getLogger("bench.run")


def execute(cfg: DictConfig) -> Path:
    """Run one config's job and return the record path of its (last) run; for tests and scripts."""
    from bench.job import plan_job, preset_of

    run_job(cfg)
    return plan_job(cfg, preset_of(cfg))[-1].path


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    try:
        run_job(cfg)
    except BenchError as err:
        if HydraConfig.get().mode.name == "MULTIRUN":
            raise  # Hydra marks the job failed; the multirun goes on with the other jobs and exits non-zero
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1 if isinstance(err, JobFailed) else 2)


if __name__ == "__main__":
    main()
