"""The small interface every method implements."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from bench.backbones.scoring import ScoringBatch, target_logits

Scorer = Callable[[ScoringBatch], torch.Tensor]


class Method:
    """A tuning method decides what is trainable and how a batch is scored.

    - ``setup(backbone)`` attaches the method to a loaded backbone (freezing what it does not train,
      creating its own modules, e.g. a prompt encoder) and must be called before anything else;
    - ``scorer()`` maps a padded :class:`ScoringBatch` to scores at its target slots
      (``(n_targets, vocab)`` logits for LM-head methods);
    - ``trainable_parameters()`` lists exactly what an optimizer may change; ``param_groups``
      gives them per learning rate (e.g. prompt encoder vs backbone);
    - ``modules()`` are the method's own modules (saved alone, small); the backbone is never
      written out for frozen methods.
    """

    name: str = "method"
    # what the method supports, declared here so runs are checked before any weights load
    trains: bool = False  # fits parameters on the train split
    tunes_backbone: bool = False  # changes backbone weights (a tuned copy per run)
    output_space: str = "vocab"  # "vocab": the LM head over the vocabulary | "labels": a classifier head
    uses_demonstrations: bool = False  # puts labelled train examples into the input (in-context learning)
    changes_template: bool = False  # adapt_template() inserts the method's own slots (soft prompts)
    decoding: str = "most_confident"  # multi-token inference on masked LMs (PET's default)
    needs_model: bool = True  # False for baselines that predict without a forward pass
    task_kinds: tuple[str, ...] | None = None  # task kinds it is defined for (None: every kind)

    def setup(self, backbone) -> None:
        self.backbone = backbone

    def adapt_template(self, template):
        """The template this method scores (identity unless ``changes_template``)."""
        return template

    # what is trained -------------------------------------------------------------------------
    def own_modules(self) -> dict[str, nn.Module]:
        """The method's own modules (prompt encoders, heads, prefixes), by name."""
        return {}

    def trainable_parameters(self) -> list[nn.Parameter]:
        params = [p for m in self.own_modules().values() for p in m.parameters() if p.requires_grad]
        if self.tunes_backbone:
            params += [p for p in self.backbone.model.parameters() if p.requires_grad]
        return params

    def param_groups(self, trainer_cfg: Mapping) -> list[dict]:
        """Own modules at ``trainer.lr``; the backbone (when tuned) at ``trainer.backbone_lr``."""
        groups = [{"params": [p for m in self.own_modules().values() for p in m.parameters() if p.requires_grad],
                   "lr": float(trainer_cfg["lr"]), "name": "method"}]
        if self.tunes_backbone:
            lr = trainer_cfg.get("backbone_lr") or trainer_cfg["lr"]
            groups.append({"params": [p for p in self.backbone.model.parameters() if p.requires_grad],
                           "lr": float(lr), "name": "backbone"})
        return [g for g in groups if g["params"]]

    def train_mode(self) -> None:
        for module in self.own_modules().values():
            module.train()
        if self.tunes_backbone:
            self.backbone.model.train()

    def eval_mode(self) -> None:
        for module in self.own_modules().values():
            module.eval()
        self.backbone.model.eval()

    # scoring -------------------------------------------------------------------------------
    def scorer(self) -> Scorer:
        model = self.backbone.model
        return lambda batch: target_logits(model, batch)

    # saving --------------------------------------------------------------------------------
    def save_trainable(self, path: str | Path) -> Path:
        """Save the method's own modules only (small); refuses to write a tuned backbone here."""
        state = {name: module.state_dict() for name, module in self.own_modules().items()}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save({"method": self.name, "modules": state}, tmp)
        tmp.replace(path)
        return path

    def load_trainable(self, path: str | Path) -> None:
        saved = torch.load(Path(path), map_location="cpu", weights_only=True)
        modules = self.own_modules()
        missing = set(modules) ^ set(saved["modules"])
        if missing:
            raise ValueError(f"{path}: saved modules {sorted(saved['modules'])} do not match {sorted(modules)}")
        for name, module in modules.items():
            module.load_state_dict(saved["modules"][name])


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
