"""``examples/lecture.ipynb`` runs top to bottom in a real kernel (nbclient + ipykernel), any cell error
failing the test, and writes only into a temporary folder.

The notebook is stored without outputs. It runs with this checkout's ``src`` first on the path (the
kernel imports the cnnlab under test, which a last cell checks), the real data of ``CNNLAB_DATA_DIR``,
and every place a kernel or the notebook writes (outputs, caches, IPython's and Jupyter's folders,
matplotlib's cache) pointed into ``tmp_path``; the working folder must stay empty. The wall time is
printed (``-s``), not asserted.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "lecture.ipynb"
SRC = ROOT / "src"


def _code_outputs(nb: object) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]  # type: ignore[attr-defined]


def test_notebook_is_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "the notebook has no code"
    assert all(not c.outputs and c.execution_count is None for c in code), "clear the outputs first"
    assert nb.metadata.kernelspec.name == "python3"
    # Each numbered section opens with a markdown cell saying the idea, then the cells that show it.
    sections = [i for i, c in enumerate(nb.cells)
                if c.cell_type == "markdown" and re.match(r"## \d+\. ", c.source)]
    assert len(sections) == 15
    for i in sections:
        idea = nb.cells[i].source.split("\n", 1)[1]
        assert idea.count(". ") >= 1 and len(idea) > 150, nb.cells[i].source[:60]
        assert nb.cells[i + 1].cell_type == "code", nb.cells[i].source[:60]


def _kernel_name(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``python3``; where this environment has no such kernelspec, one is installed under ``tmp``."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        install(prefix=str(tmp / "kernel"), kernel_name="python3")
        monkeypatch.setenv("JUPYTER_PATH", str(tmp / "kernel" / "share" / "jupyter"))
        KernelSpecManager().get_kernel_spec("python3")  # found now
    return "python3"


@pytest.mark.slow
def test_lecture_notebook_runs_top_to_bottom(data_dir: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    work.mkdir()
    for var, sub in {"CNNLAB_NOTEBOOK_OUT": "out", "CNNLAB_CACHE_DIR": "cache", "IPYTHONDIR": "ipython",
                     "JUPYTER_RUNTIME_DIR": "runtime", "JUPYTER_DATA_DIR": "jupyter-data",
                     "MPLCONFIGDIR": "matplotlib"}.items():
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(data_dir))
    path = [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))
    kernel = _kernel_name(tmp_path, monkeypatch)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    n_cells = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell("import cnnlab\nprint('cnnlab from', cnnlab.__file__)"))
    client = nbclient.NotebookClient(nb, kernel_name=kernel, timeout=600, allow_errors=False,
                                     resources={"metadata": {"path": str(work)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    print(f"\nexamples/lecture.ipynb: {n_cells} cells ran in {time.perf_counter() - start:.0f} s")

    outputs = _code_outputs(nb)
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"cnnlab from {SRC / 'cnnlab' / '__init__.py'}" in text  # the checkout under test ran
    for claim in ("flip=True equals scipy.signal.convolve2d: True",
                  "effective field inside the theoretical one: True",
                  "shift 0 is evaluate's accuracy: True",
                  "kernel sums, zero-mean:  [0.0, 0.0, 0.0, 0.0, 0.0]"):
        assert claim in text, claim
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert sum("cnnlab-summary" in h for h in html) >= 3  # ModelSummary._repr_html_ and summary_html
    assert sum("cnnlab-evaluation" in h for h in html) == 2  # EvalResult._repr_html_, Fashion and cats
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 20  # every figure of every section was drawn
    assert not [o for o in outputs if o.output_type == "error"]
    assert not list(work.iterdir()), "the notebook wrote into its working folder"
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["cats", "italy", "mnist_cnn", "mnist_mlp", "overfit"]  # italy: the 1-D convnets section
    assert all((out / "runs" / r / "model.safetensors").is_file() for r in runs)
