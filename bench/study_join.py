"""Which jobs of a study's wave run as ONE job whose soft prompts train together (issue 29).

A study job is one (preset, model, seed) (:mod:`bench.study`). The jobs of one preset and model that
differ only in their seed join when their runs can train together on one frozen backbone
(:func:`bench.superglue.joint_runner.why_not_joinable_config`: SuperGLUE / FewGLUE runs of P-Tuning or
Prompt Tuning on a frozen encoder-only or decoder-only model, ``trainer.joint`` not ``off``, no input
runs): the study launches them as one job, ``seed=<first> joint_seeds=[<all>]``, which loads the
backbone once and trains every run of those seeds (and its grid points) together
(:mod:`bench.superglue.joint_runner`); each run still writes its own record under its own name.
``bench.study run ... --no-join`` (or ``trainer.joint=off``) launches one job per seed as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from omegaconf import OmegaConf

from bench.inputs import compose_job
from bench.superglue.joint_runner import why_not_joinable_config

Job = tuple[str, str, int]  # (preset, model, seed)


@dataclass
class JoinPlan:
    joined: list[tuple[str, str, list[int]]] = field(default_factory=list)  # (preset, model, seeds): one job each
    apart: dict[Job, str] = field(default_factory=dict)  # every other job -> why it runs on its own

    def alone(self) -> set[Job]:
        """The jobs launched one per seed, as without joining."""
        return set(self.apart)

    def launches(self) -> list[tuple[list[str], list[str], list[int], list[str]]]:
        """The joined jobs as Hydra multiruns: (presets, models, [first seed], [joint_seeds override]) each, a
        product that holds joined jobs only."""
        per_model: dict[tuple[tuple[int, ...], str], list[str]] = {}
        for preset, model, seeds in self.joined:
            per_model.setdefault((tuple(seeds), model), []).append(preset)
        merged: dict[tuple[tuple[int, ...], tuple[str, ...]], list[str]] = {}
        for (seeds, model), presets in per_model.items():
            merged.setdefault((seeds, tuple(presets)), []).append(model)
        return [(list(presets), models, [seeds[0]], [f"joint_seeds=[{','.join(str(s) for s in seeds)}]"])
                for (seeds, presets), models in merged.items()]

    def lines(self) -> list[str]:
        """What joins and, for preset x model pairs of several seeds that do not, why."""
        out = [f"  joined: {p} x {m}: seeds {', '.join(map(str, s))} in one job (soft prompts trained together, "
               "bench.joint)" for p, m, s in self.joined]
        pairs: dict[tuple[str, str], list[int]] = {}
        for preset, model, seed in sorted(self.apart):
            pairs.setdefault((preset, model), []).append(seed)
        out += [f"  not joined: {p} x {m} ({len(s)} seeds): {self.apart[(p, m, s[0])]}"
                for (p, m), s in pairs.items() if len(s) > 1]
        return out


def plan_joins(jobs: set[Job], overrides: Sequence[str], expand: Callable[[list[str]], list[list[str]]],
               enabled: bool = True) -> JoinPlan:
    """Split a wave's runnable jobs into joined ones and the rest (with the reason); composes configs only (call
    inside :func:`bench.study.hydra_context`). ``expand``: the study's sweep-override expansion."""
    plan = JoinPlan()
    pairs: dict[tuple[str, str], list[int]] = {}
    for preset, model, seed in sorted(jobs):
        pairs.setdefault((preset, model), []).append(seed)
    job_level = [o for o in overrides if not o.lstrip("+~").startswith(("hydra.", "hydra/"))]
    for (preset, model), seeds in pairs.items():
        reason = (None if enabled else "--no-join") or (None if len(seeds) > 1 else "one seed to run")
        if reason is None:
            reason = _why_not(preset, model, seeds[0], job_level, expand)
        if reason is None:
            plan.joined.append((preset, model, seeds))
        else:
            plan.apart.update({(preset, model, s): reason for s in seeds})
    return plan


def _why_not(preset: str, model: str, seed: int, overrides: list[str],
             expand: Callable[[list[str]], list[list[str]]]) -> str | None:
    for extra in expand(overrides):  # every point of a sweep override must join
        cfg = compose_job(preset, model, [f"seed={seed}", *extra])
        if (cfg.get("sweep") or {}).get("first_seed_only"):
            return "it runs once per seed list (sweep.first_seed_only)"
        try:
            reason = why_not_joinable_config(OmegaConf.to_container(cfg, resolve=True))
        except Exception as err:  # noqa: BLE001 - a config that does not compose or instantiate: its own jobs say so
            reason = f"{type(err).__name__}: {err}"
        if reason:
            return reason
    return None


__all__ = ["JoinPlan", "plan_joins"]
