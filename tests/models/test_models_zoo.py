"""Acceptance 2 and 4: the zoo against torchinfo on the upstream networks, and offline lite0 weights.

Our zoo models regroup torchvision's/timm's modules; the reference is the upstream network itself:
torchinfo's figures on it, and its outputs once both hold the same weights. No downloads.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchinfo import summary as ti_summary

from cnnlab.models import ModelContract, create_model
from cnnlab.summary import summarize


def _upstream(name: str) -> torch.nn.Module:
    import timm
    import torchvision

    if name == "efficientnet_lite0":
        return timm.create_model("tf_efficientnet_lite0")
    if name == "inception_v3":
        return torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    return torchvision.models.get_model(name, weights=None)


ZOO = [
    ("resnet18", 224),
    ("efficientnet_lite0", 224),
    ("resnet50", 224),
    ("inception_v3", 299),
    ("vgg16", 224),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "size"), ZOO, ids=[z[0] for z in ZOO])
def test_zoo_matches_torchinfo_and_upstream(name: str, size: int) -> None:
    torch.manual_seed(0)
    ours = create_model(name).eval()
    up = _upstream(name).eval()
    ti = ti_summary(up, input_size=(1, 3, size, size), verbose=0)
    s = summarize(ours, (3, size, size), model_name=name)
    assert s.total_params == ti.total_params == sum(p.numel() for p in up.parameters())
    assert s.mult_adds == ti.total_mult_adds
    # same weights -> same logits (the regrouping changes nothing)
    ours.load_upstream_state_dict(up.state_dict(), what="upstream")
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), up(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("name", "cam", "n_blocks"),
    [
        ("resnet18", "features.layer4", 4),
        ("vgg16", "features.block5.29", 5),
        ("inception_v3", "features.Mixed_7c", 16),
        ("efficientnet_lite0", "features.bn2", 5),
    ],
)
def test_zoo_contract(name: str, cam: str, n_blocks: int) -> None:
    m = create_model(name, num_classes=3).eval()
    assert isinstance(m, ModelContract)
    assert m.default_cam_layer == cam and len(m.blocks) == n_blocks
    for b in [*m.blocks, cam]:
        m.get_submodule(b)
    size = 107 if name == "inception_v3" else 96  # 75 is inception's minimum
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        out = m(x)
        assert out.shape == (1, 3)
        torch.testing.assert_close(out, m.forward_head(m.forward_features(x)))
    assert m.pretrained_cfg is None  # random init carries no preprocessing


def test_inception_has_no_aux_branch_and_returns_a_tensor() -> None:
    m = create_model("inception_v3", num_classes=5).train()
    assert not any("AuxLogits" in n for n, _ in m.named_modules())
    out = m(torch.randn(2, 3, 107, 107))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5)


@pytest.mark.parametrize(
    "arch", ["resnet10t", "mobilenetv3_small_050", "efficientnet_b0", "regnetx_002", "convnext_atto"]
)
def test_timm_prefix_builds_any_timm_model(arch: str) -> None:
    import timm

    m = create_model(f"timm:{arch}", num_classes=4).eval()
    up = timm.create_model(arch, num_classes=4).eval()
    m.load_upstream_state_dict(up.state_dict(), what="timm")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(m(x), up(x))
    seen: list[torch.Tensor] = []
    h = m.get_submodule(m.default_cam_layer).register_forward_hook(lambda _m, _i, o: seen.append(o))
    with torch.no_grad():
        feats = m.forward_features(x)
    h.remove()
    assert seen[-1].dim() == 4 and seen[-1].shape[1:] == feats.shape[1:]  # the last spatial map
    s = summarize(m, (3, 64, 64))
    ti = ti_summary(up, input_size=(1, 3, 64, 64), verbose=0)
    assert (s.total_params, s.mult_adds) == (ti.total_params, ti.total_mult_adds)


def test_unknown_timm_model() -> None:
    from cnnlab.errors import ModelError

    with pytest.raises(ModelError, match="timm:resnet18"):
        create_model("timm:resnet18x")


def test_lite0_key_translation_is_one_to_one() -> None:
    from cnnlab.models.zoo_timm import lite0_weights_path

    path = lite0_weights_path()
    assert path is not None
    sd = torch.load(path, map_location="cpu", weights_only=True)
    m = create_model("efficientnet_lite0", pretrained=True)
    own = m.state_dict()
    assert len(sd) == len(own) == 296
    for (k_src, v_src), (k_dst, v_dst) in zip(sd.items(), own.items(), strict=True):
        assert torch.equal(v_src, v_dst), (k_src, k_dst)
    cfg = m.pretrained_cfg
    assert cfg is not None and cfg.input_size == (3, 224, 224) and len(cfg.class_names) == 1000
    import timm

    ref = timm.models.get_pretrained_cfg("tf_efficientnet_lite0")
    assert (cfg.mean, cfg.std, cfg.interpolation, cfg.crop_pct) == (
        ref.mean,
        ref.std,
        ref.interpolation,
        ref.crop_pct,
    )


def test_lite0_pretrained_sees_a_cat_in_chelsea() -> None:
    """Acceptance 4: offline weights + the PretrainedCfg-derived eval transform rank an ImageNet cat first."""
    from skimage import data

    from cnnlab.data.transforms import eval_transform

    m = create_model("efficientnet_lite0", pretrained=True).eval()
    x = eval_transform(m.pretrained_cfg)(torch.from_numpy(data.chelsea()).permute(2, 0, 1))
    with torch.no_grad():
        top = int(m(x[None]).argmax())
    assert 281 <= top <= 285, m.pretrained_cfg.class_names[top]


def test_pretrained_download_failure_names_local_option(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.models as tvm

    from cnnlab.errors import ModelError

    def offline(*a: object, **k: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(tvm, "get_model", offline)
    with pytest.raises(ModelError, match="`weights` FILE"):
        create_model("resnet18", pretrained=True)


def test_torchvision_pretrained_from_the_hub_cache(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pretrained=True uses torchvision's own loader; a file already in the torch hub cache works offline."""
    import torchvision
    from torchvision.models import ResNet18_Weights

    from cnnlab.models import model_info

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    assert model_info("resnet18")["pretrained_offline"] is False
    ref = torchvision.models.resnet18()
    cached = tmp_path / "hub" / "checkpoints" / ResNet18_Weights.DEFAULT.url.rsplit("/", 1)[-1]
    cached.parent.mkdir(parents=True)
    torch.save(ref.state_dict(), cached)
    assert model_info("resnet18")["pretrained_offline"] is True
    m = create_model("resnet18", pretrained=True).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref.eval()(x), rtol=0, atol=0)
    cfg = m.pretrained_cfg
    t = ResNet18_Weights.DEFAULT.transforms()
    assert cfg is not None and cfg.source == "torchvision:resnet18"
    assert cfg.mean == tuple(t.mean) and cfg.crop_pct == t.crop_size[0] / t.resize_size[0]
    assert cfg.input_size == (3, 224, 224) and len(cfg.class_names) == 1000


def test_inception_cfg_records_its_input_normalisation() -> None:
    from cnnlab.models.zoo_torchvision import _cfg_from_weights

    cfg = _cfg_from_weights("inception_v3", "x")
    assert cfg.input_size == (3, 299, 299) and cfg.mean == (0.5, 0.5, 0.5) and cfg.std == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18"])
def test_grey_input_adapts_the_first_conv(name: str, tmp_path) -> None:
    import torchvision

    if name == "efficientnet_lite0":
        m = create_model(name, in_chans=1, pretrained=True, num_classes=2).eval()
        rgb = create_model(name, pretrained=True).eval()
        first = "features.conv_stem"
    else:
        path = tmp_path / "r18.pth"
        torch.save(torchvision.models.resnet18().state_dict(), path)
        m = create_model(name, in_chans=1, pretrained=str(path), num_classes=2).eval()
        rgb = create_model(name, pretrained=str(path)).eval()
        first = "features.conv1"
    # a grey image through the summed kernels == the same grey image copied to RGB through the RGB kernels
    w1, w3 = m.get_submodule(first).weight, rgb.get_submodule(first).weight
    assert w1.shape[1] == 1
    torch.testing.assert_close(w1[:, 0], w3.sum(1))
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(m.forward_features(x), rgb.forward_features(x.expand(1, 3, 64, 64)))
    assert m(x).shape == (1, 2)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "vgg16", "inception_v3"])
def test_default_weight_file_names_are_torchvisions(arch: str) -> None:
    from torchvision.models import get_model_weights

    from cnnlab.models.zoo_torchvision import DEFAULT_WEIGHT_FILES

    assert DEFAULT_WEIGHT_FILES[arch] == Path(get_model_weights(arch).DEFAULT.url).name


def test_listing_the_registry_does_not_import_torchvision() -> None:
    import subprocess
    import sys

    code = "import sys; from typer.testing import CliRunner; from cnnlab.cli import app; " \
           "r = CliRunner().invoke(app, ['models', '--json']); assert r.exit_code == 0, r.output; " \
           "print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
