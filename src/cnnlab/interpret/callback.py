"""CAM in the loop: a Lightning callback that explains a fixed set of images after every validation.

Pass it to :func:`cnnlab.train.fit` (``fit(config, callbacks=[CamSnapshots(...)])``): after each
validation epoch it runs :func:`cnnlab.interpret.explain` on the same images (eval mode, no parameter
gradients, hooks removed), keeps the maps per epoch and, with ``out_dir``, writes one overlay figure per
epoch, so one can watch where the network learns to look.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch

from .cam import explain

__all__ = ["CamSnapshots"]


class CamSnapshots(L.Callback):
    """Class activation maps of fixed images after every validation epoch.

    Args:
        images: uint8 images ``[N, C, H, W]`` at the model's input size.
        mean: Normalisation mean (the run's).
        std: Normalisation std.
        method: CAM method name (registry).
        layer: Layer spec (``"auto"`` = the model's default CAM layer).
        out_dir: Folder for ``cam_epoch<NNN>.png`` figures (None = keep the maps only).
        class_names: Names for the figure titles.

    Attributes:
        history: One entry per validation epoch: ``{"epoch", "maps" [N, H, W], "targets" [N]}``.
    """

    def __init__(
        self,
        images: torch.Tensor,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        method: str = "gradcam",
        layer: str = "auto",
        out_dir: str | Path | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        from ..data.transforms import Preprocess

        self.images = images
        self.preprocess = Preprocess(tuple(images.shape[1:]), tuple(mean), tuple(std))  # type: ignore[arg-type]
        self.method, self.layer = method, layer
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.class_names = list(class_names) if class_names else None
        self.history: list[dict[str, Any]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        model = getattr(pl_module, "model", pl_module)
        x = self.preprocess.normalize(self.images.to(pl_module.device))
        res = explain(model, x, method=self.method, layer=self.layer)
        epoch = int(trainer.current_epoch)
        self.history.append({"epoch": epoch, "maps": res.maps.cpu(), "targets": res.targets.cpu()})
        if self.out_dir is not None:
            from .._io import save_figure
            from ..report.interpret_plots import cam_overlay_figure

            res.maps = res.maps.cpu()
            res.targets = res.targets.cpu()
            fig = cam_overlay_figure(self.images.cpu(), res, class_names=self.class_names)
            fig.suptitle(f"epoch {epoch + 1}: {self.method} on {res.layer}", fontsize=9)
            save_figure(self.out_dir / f"cam_epoch{epoch + 1:03d}.png", fig)
