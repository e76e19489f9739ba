"""``manual``: a frozen model scores a hand-written (or searched) discrete template, zero-shot."""

from __future__ import annotations

from bench.methods.base import Method


class ManualPrompt(Method):
    """No parameters are trained; the backbone is frozen and put in eval mode."""

    name = "manual"
    trains = False

    def setup(self, backbone) -> None:
        super().setup(backbone)
        backbone.model.eval()
        backbone.model.requires_grad_(False)
