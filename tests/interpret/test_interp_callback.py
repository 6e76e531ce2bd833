"""CAM in the loop: CamSnapshots inside cnnlab.train.fit."""

from __future__ import annotations

from pathlib import Path

import torch

from cnnlab.interpret import gradcam
from cnnlab.interpret.callback import CamSnapshots


def test_cam_snapshots_every_epoch(tmp_path: Path) -> None:
    from cnnlab.data import load_data
    from cnnlab.train import TrainConfig, fit, load_run

    bundle = load_data("sample", limit=64)
    images = bundle.val.images[:3]
    cb = CamSnapshots(images, mean=(0.0,), std=(1.0,), out_dir=tmp_path / "cam", class_names=bundle.classes)
    result = fit(TrainConfig(data="sample", model="mnist_cnn_gap", limit=64, batch_size=32, epochs=2,
                             progress=False, out=str(tmp_path / "run")), callbacks=[cb])
    assert [h["epoch"] for h in cb.history] == [0, 1]
    for h in cb.history:
        assert h["maps"].shape == (3, *images.shape[-2:])
        assert float(h["maps"].min()) >= 0 and float(h["maps"].max()) <= 1
    assert sorted(p.name for p in (tmp_path / "cam").iterdir()) == ["cam_epoch001.png", "cam_epoch002.png"]
    # The last snapshot is Grad-CAM of the weights at the end of the last epoch (checkpoints/last.ckpt).
    run = load_run(result.run_dir)
    state = torch.load(result.run_dir / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    run.model.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items()})
    mean = torch.tensor(run.mean).view(1, -1, 1, 1)
    std = torch.tensor(run.std).view(1, -1, 1, 1)
    again = gradcam(run.model, (images.float() / 255 - mean) / std)
    torch.testing.assert_close(again, cb.history[-1]["maps"], rtol=1e-4, atol=1e-4)
