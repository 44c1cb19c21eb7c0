"""Training on partly-labelled images: each image's classification loss counts only for the classes its
data set boxes wherever they occur.

A real rubbish photo has unboxed cars and people in it; trained as plain background it teaches the model
that a real car is not a vehicle. With the loss of unlabelled classes masked per image, the photo teaches
what rubbish and bins look like and nothing about cars. Masking works per image, so mosaic (which stitches
four images from different sets into one) must be off when any image is partly labelled.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from ultralytics.utils.loss import v8DetectionLoss


def write_rules(path: Path, rules: dict[str, list[int]]) -> Path:
    """Save ``{image folder: labelled class ids}``; images in folders not named are fully labelled."""
    path.write_text(json.dumps(rules, indent=1) + "\n")
    return path


class PartialLabelLoss(v8DetectionLoss):
    """YOLOv8 detection loss whose class loss is zero for the classes an image's folder does not label."""

    def __init__(self, model, rules: dict[str, list[int]]):
        super().__init__(model)
        self.rules = []
        for folder, labelled in rules.items():
            mask = torch.zeros(self.nc, device=self.device)
            mask[labelled] = 1.0
            self.rules.append((str(Path(folder).resolve()) + "/", mask))

    def mask_for(self, files: list[str]) -> torch.Tensor:
        rows = []
        for f in files:
            path = str(Path(f).absolute())
            rows.append(next((m for prefix, m in self.rules if path.startswith(prefix)),
                             torch.ones(self.nc, device=self.device)))
        return torch.stack(rows).unsqueeze(1)  # (batch, 1, classes), broadcast over anchors

    def get_assigned_targets_and_loss(self, preds, batch, **kwargs):
        # the parent multiplies the per-anchor, per-class BCE by class_weights when it is set
        self.class_weights = self.mask_for(batch["im_file"]) if self.rules else None
        return super().get_assigned_targets_and_loss(preds, batch, **kwargs)


def install(yolo, rules_file: Path) -> None:
    """Make an Ultralytics YOLO object train with PartialLabelLoss (the rules in ``rules_file``)."""
    rules = json.loads(Path(rules_file).read_text())

    def on_train_start(trainer) -> None:
        from ultralytics.utils.torch_utils import unwrap_model

        model = unwrap_model(trainer.model)
        model.criterion = PartialLabelLoss(model, rules)

    yolo.add_callback("on_train_start", on_train_start)
