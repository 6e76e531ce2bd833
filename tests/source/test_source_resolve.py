"""``resolve_model``: a run folder, a registry name, a spec string or a weights file -> model + inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnlab.errors import ArgumentError, CnnlabError
from cnnlab.source import is_spec, resolve_model


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cnnlab.train import TrainConfig, fit

    out = tmp_path_factory.mktemp("src") / "run"
    fit(TrainConfig(data="sample", model="mnist_cnn_gap", epochs=1, limit=100, batch_size=32, progress=False,
                    out=str(out)))
    return out


@pytest.fixture(scope="module")
def png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "photo.png"
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (90, 120, 3), generator=g, dtype=torch.uint8).numpy()
    Image.fromarray(pixels).save(path)
    return path


def test_run_folder_is_fed_as_its_training_data(run_dir: Path, png: Path) -> None:
    from cnnlab.train import load_run
    from cnnlab.train.evaluate import load_images

    src = resolve_model(run_dir)
    run = load_run(run_dir)
    assert src.learned and src.run is not None and src.classes == run.classes and src.num_classes == 10
    raw, x = src.preprocess([png])
    assert raw.shape == (1, 1, 28, 28) and torch.equal(raw, load_images(run, [png]))
    expected = (raw.float() / 255 - torch.tensor(run.mean).view(1, -1, 1, 1)) / torch.tensor(run.std).view(
        1, -1, 1, 1)
    torch.testing.assert_close(x, expected)
    assert not src.model.training


def test_pretrained_registry_model_uses_its_weights_eval_transform(png: Path) -> None:
    from PIL import Image

    from cnnlab.data.transforms import eval_transform

    src = resolve_model("efficientnet_lite0")
    assert src.learned and len(src.classes) == 1000 and src.notices == []
    cfg = src.model.pretrained_cfg
    _, x = src.preprocess([png])
    reference = eval_transform(cfg)(Image.open(png).convert("RGB"))  # torchvision v2's own pipeline
    assert x.shape == (1, *cfg.input_size)
    torch.testing.assert_close(x[0], reference, rtol=0, atol=1e-5)


def test_registry_model_without_offline_weights_is_random_and_says_so() -> None:
    src = resolve_model("resnet18")
    assert not src.learned and src.image_size == (3, 224, 224)
    assert any("not available offline" in n for n in src.notices)
    assert resolve_model("resnet18", pretrained=False).notices == []


def test_spec_string_builds_a_network_at_the_given_input() -> None:
    text = "conv:8:3 relu maxpool:2 conv:16:3 relu"
    assert is_spec(text) and not is_spec("mnist_cnn")
    src = resolve_model(text, input_size=(1, 28, 28), num_classes=4)
    assert not src.learned and src.model(torch.zeros(2, 1, 28, 28)).shape == (2, 4)


def test_weights_file_records_its_architecture(run_dir: Path, tmp_path: Path) -> None:
    src = resolve_model(run_dir / "model.safetensors")
    run = resolve_model(run_dir)
    assert src.learned and src.num_classes == 10
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(src.model(x), run.model(x))
    bare = tmp_path / "bare.pth"
    torch.save(run.model.state_dict(), bare)
    with pytest.raises(ArgumentError, match="does not record its architecture"):
        resolve_model(bare)
    again = resolve_model("mnist_cnn_gap", weights=bare)
    with torch.no_grad():
        torch.testing.assert_close(again.model(x), run.model(x))


def test_a_missing_path_and_an_unknown_name_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(CnnlabError, match="no such run folder"):
        resolve_model(tmp_path / "nope" / "run")
    with pytest.raises(ValueError, match=r"unknown model 'resnet_18'.*resnet18"):  # an ArgumentError
        resolve_model("resnet_18")
    (tmp_path / "plain").mkdir()
    with pytest.raises(CnnlabError, match="not a run folder"):
        resolve_model(tmp_path / "plain")
