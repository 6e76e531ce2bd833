"""`cnnlab filters SPEC`: a few images per class of a dataset; bad or over-limit input is one line, exit 2."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi
from PIL import Image
from typer.testing import CliRunner

from cnnlab.cli import app
from cnnlab.filters._limits import ENV_MAX_FILTERS
from cnnlab.memory import ENV_MAX_MEMORY

runner = CliRunner()


def _run(*args: str, **kwargs) -> tuple[int, str, dict]:
    result = runner.invoke(app, ["filters", *args], **kwargs)
    info = json.loads(result.stdout) if result.exit_code == 0 and "--json" in args else {}
    return result.exit_code, result.output, info


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file read with numpy alone (independent of cnnlab's reader): big-endian dims after 4 bytes."""
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def test_filters_on_fashion_mnist_picks_the_first_image_of_each_class(data_dir: Path, tmp_path: Path):
    code, output, info = _run("fashion-mnist", "--bank", "sobel", "--json", "--out", str(tmp_path / "s.png"),
                              env={"CNNLAB_DATA_DIR": str(data_dir)})
    assert code == 0, output
    assert [im["source"] for im in info["images"]] == ["T-shirt/top", "Trouser", "Pullover", "Dress"]
    assert all(im["shape"] == [1, 28, 28] for im in info["images"])
    # reference: the test split read with numpy, first index of classes 0..3, scipy's Sobel (zero padding)
    images = _read_idx(data_dir / "fashion-mnist" / "t10k-images-idx3-ubyte.gz")
    labels = _read_idx(data_dir / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz")
    for c, got in enumerate(info["mean_abs_response"]):
        img = images[int(np.flatnonzero(labels == c)[0])].astype(np.float64) / 255
        gx, gy = ndi.sobel(img, axis=1, mode="constant"), ndi.sobel(img, axis=0, mode="constant")
        ref = [np.abs(gx).mean(), np.abs(gy).mean(), np.hypot(gx, gy).mean()]
        np.testing.assert_allclose(got, ref, rtol=1e-5)
    # deterministic: the same command gives the same document
    assert _run("fashion-mnist", "--bank", "sobel", "--json", "--out", str(tmp_path / "s.png"),
                env={"CNNLAB_DATA_DIR": str(data_dir)})[2] == info


def _class_folder(root: Path) -> Path:
    """cats/ and dogs/ with three 20x16 images each; pixel value says which file it is."""
    for c, name in enumerate(["cats", "dogs"]):
        (root / name).mkdir(parents=True)
        for k in range(3):
            Image.fromarray(np.full((16, 20), 40 * (3 * c + k) + 10, np.uint8)).save(root / name / f"{k}.png")
    return root


def test_filters_on_a_folder_and_a_csv_round_robin_over_classes(tmp_path: Path):
    folder = _class_folder(tmp_path / "pets")
    code, output, info = _run(str(folder), "--bank", "haar", "--json", "--out", str(tmp_path / "h.png"))
    assert code == 0, output
    assert [im["source"] for im in info["images"]] == ["cats", "dogs", "cats", "dogs"]
    assert all(im["shape"] == [1, 150, 150] for im in info["images"])  # folders are resized to 150 px
    assert info["filters"][2]["params"]["form"] == "zero-mean"
    csv = tmp_path / "list.csv"
    csv.write_text("path,label\n" + "".join(f"{p},{p.parent.name}\n" for p in sorted(folder.rglob("*.png"))))
    code, output, info = _run(str(csv), "--bank", "sobel", "--max-images", "3", "--json",
                              "--out", str(tmp_path / "c.png"))
    assert code == 0, output
    assert [im["source"] for im in info["images"]] == ["cats", "dogs", "cats"]
    with Image.open(tmp_path / "c.png") as im:
        assert im.format == "PNG" and im.size[1] > 300  # three rows


def test_filters_on_a_flat_folder_of_photos_takes_its_first_files(tmp_path: Path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for k, name in enumerate(["b.png", "a.png", "c.jpg", "notes.txt"]):
        if name.endswith("txt"):
            (folder / name).write_text("not an image")
        else:
            Image.fromarray(np.full((12 + k, 9), 50 * k, np.uint8)).save(folder / name)
    code, output, info = _run(str(folder), "--bank", "sobel", "--max-images", "2", "--json",
                              "--out", str(tmp_path / "f.png"))
    assert code == 0, output
    assert info["images"] == [{"source": "a.png", "shape": [1, 13, 9]},
                              {"source": "b.png", "shape": [1, 12, 9]}]  # by name, native size


def test_filters_haar_form_option(tmp_path: Path):
    code, output, info = _run("--bank", "haar", "--haar-form", "unbalanced", "--max-images", "1", "--json",
                              "--out", str(tmp_path / "h.png"))
    assert code == 0, output
    assert {f["params"]["form"] for f in info["filters"]} == {"unbalanced"}
    assert info["filters"][2]["name"] == "three-rect x 6px unbalanced"


@pytest.mark.parametrize(("args", "needle"), [
    (["--thetas", "1000000"],
     "error: --thetas 1000000: 3 frequencies x 1000000 thetas x 1 sigmas x 1 phases = 3,000,000 kernels, "
     f"over the limit of 1,024; give fewer, or raise the limit with {ENV_MAX_FILTERS}=3000000"),
    (["--frequencies", "0.000001"], "error: --frequencies 0.000001: needs a 3,373,033x3,373,033 kernel"),
    (["--bank", "gaussian", "--param", "sigmas=1e9"], "error: --param sigmas=1e9: needs a "),
    (["--bank", "haar", "--haar-form", "paper"], "error: --haar-form paper: choose zero-mean or unbalanced"),
    (["--bank", "sobel", "--haar-form", "unbalanced"], "error: --haar-form only apply to --bank haar"),
    (["fashion-mnst"], "error: unknown data SPEC 'fashion-mnst'"),
    (["sample", "x.png"], "error: INPUTS sample x.png: give one data SPEC (sample) or image files, not both"),
    (["--max-images", "0"], "--max-images"),
    (["--max-images", "1000"], "--max-images"),
    ([f"f{k}.png" for k in range(33)], "error: IMAGE: 33 files, but the response grid takes at most 32"),
])
def test_filters_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], needle: str):
    code, output, _ = _run(*args, "--out", str(tmp_path / "o.png"))
    assert code == 2 and needle in output and "Traceback" not in output
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "o_kernels.png").exists()


def test_filters_responses_over_budget_are_refused_before_any_figure(tmp_path: Path):
    img = tmp_path / "big.png"
    Image.fromarray(np.zeros((600, 700), np.uint8)).save(img)  # 12 gabor responses: 12 x 600 x 700 x 4 B
    code, output, _ = _run(str(img), "--out", str(tmp_path / "o.png"), env={ENV_MAX_MEMORY: str(16 / 1024)})
    assert code == 2, output
    line = output.strip()
    assert line.startswith("error: gabor responses (1 image(s) x 12 x 600x700 float32) needs about 38 MiB")
    assert "--max-images" in line and f"{ENV_MAX_MEMORY}=1" in line and "\n" not in line
    assert not (tmp_path / "o_kernels.png").exists()
