"""What used to be silently wrong, or said the wrong thing, is refused or said right (issue 20).

* ``evaluate R`` with ``run.json`` saying ``"model": "bogus"`` exited 0: run metadata that disagrees with
  ``config.yaml`` or the weights is refused, naming the file and the key.
* ``predict R --model X IMG`` classified the run folder's figures with random weights: refused.
* ``evaluate`` on a read-only folder or a full disk exited 0 with a note that nothing was written.
* After a kill while the first checkpoint was written, ``--resume`` said "stopped before its first epoch
  ended" though ``metrics.csv`` held epoch 1: it says what the folder holds.
* The server decoded any number of uploads at once; it answers 503 with ``Retry-After`` beyond its slots,
  and ``/openapi.json`` documents 400, 413, 415 and 503.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from _trust import TINY, invoke, refused

from cnnlab.errors import CnnlabError
from cnnlab.runfolder.folder import load_run


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cnnlab.data import load_data
    from cnnlab.images import save_image

    folder = tmp_path_factory.mktemp("refusals")
    return save_image(folder / "x.png", load_data("sample", limit=1).val.images[0])


def _edit_json(path: Path, **changes: Any) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_evaluate_refuses_run_json_naming_another_model(copy_run) -> None:
    run = copy_run()
    _edit_json(run / "run.json", model="bogus")
    line = refused(invoke("evaluate", str(run), "--json"))
    assert line == (f"error: {run / 'run.json'}: key 'model' is 'bogus', but config.yaml says 'mnist_cnn': "
                    "the files are of different runs; train the run again or restore the file")


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda run: _edit_json(run / "run.json", head="mlp"), r"run\.json: key 'head' is 'mlp', but config"),
        (lambda run: _weights_metadata(run, model="mnist_cnn_gap"),
         r"model\.safetensors: key 'model' is 'mnist_cnn_gap', but config\.yaml says 'mnist_cnn'"),
        (lambda run: _weights_metadata(run, num_classes="7"),
         r"model\.safetensors: key 'num_classes' is '7', but run\.json says '10'"),
    ],
    ids=["head", "weights model", "weights classes"],
)
def test_metadata_that_disagrees_is_refused_naming_file_and_key(copy_run, damage, says: str) -> None:
    run = copy_run()
    damage(run)
    with pytest.raises(CnnlabError, match=says):
        load_run(run)


def _weights_metadata(run: Path, **changes: str) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(run / "model.safetensors"), framework="pt") as fh:
        meta = dict(fh.metadata())
    save_file(load_file(str(run / "model.safetensors")), str(run / "model.safetensors"), {**meta, **changes})


@pytest.mark.parametrize("command", ["predict", "explain", "features"])
def test_a_run_folder_given_with_model_is_not_taken_for_images(command: str, tiny_run: Path, image: Path,
                                                                tmp_path: Path) -> None:
    extra = [] if command == "predict" else ["--out", str(tmp_path / "x.png")]
    line = refused(invoke(command, str(tiny_run), "--model", "mnist_cnn", str(image), *extra))
    assert line == (f"error: {tiny_run}: a run folder, not images; to use its model give the run folder "
                    "first, without --model (RUN IMAGE...)")


def test_evaluate_on_a_read_only_folder_is_refused_before_the_work(copy_run, monkeypatch) -> None:
    import tempfile

    run = copy_run()
    (run / "evaluation.json").unlink(missing_ok=True)  # the shared run may have been evaluated before
    real = tempfile.mkstemp

    def read_only(*args: Any, dir: Any = None, **kw: Any) -> Any:  # mkstemp's own keyword
        if dir is not None and Path(dir) == run:
            raise PermissionError(errno.EROFS, os.strerror(errno.EROFS))
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    line = refused(invoke("evaluate", str(run), "--json"))
    assert line.startswith(f"error: RUN {run}: cannot write there (Read-only file system); evaluate writes "
                           "evaluation.json into the run folder"), line
    assert not (run / "evaluation.json").exists()


def test_evaluate_on_a_full_disk_exits_2(copy_run, monkeypatch) -> None:
    run = copy_run()
    real = os.replace

    def full(src: Any, dst: Any) -> None:
        if Path(dst).name == "evaluation.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(src, dst)

    monkeypatch.setattr(os, "replace", full)
    result = invoke("evaluate", str(run), "--json")
    line = refused(result)
    assert line == (f"error: cannot write {run / 'evaluation.json'} (No space left on device); free space or "
                    f"make {run} writable, then evaluate again")
    assert result.stdout == ""


def test_resume_after_a_kill_in_the_first_checkpoint_says_what_is_there(copy_run) -> None:
    """Killed while epoch 1's checkpoint was written: metrics.csv has the epoch, no checkpoint exists."""
    run = copy_run()
    for name in ("model.safetensors", "checkpoints/best.ckpt", "checkpoints/last.ckpt", "timing.csv"):
        (run / name).unlink()
    lines = (run / "metrics.csv").read_text().splitlines()
    (run / "metrics.csv").write_text("\n".join(lines[:2]) + "\n")
    args = ["train", "--data", "sample", "--model", "mnist_cnn", "--limit", str(TINY["limit"]),
            "--batch-size", str(TINY["batch_size"]), "--epochs", "2", "--no-progress", "--out", str(run)]
    line = refused(invoke(*args, "--resume"))
    assert "stopped before its first epoch ended" not in line
    assert ("holds an unfinished run (mnist_cnn on sample: 1 of 2 epochs in metrics.csv; checkpoints: none), "
            "but no checkpoint: it was stopped while writing its first one; start the run again with "
            "--overwrite") in line, line
    line = refused(invoke(*args))  # and without --resume, the same folder is not replaced
    assert "holds an unfinished run" in line and "--overwrite" in line


# ------------------------------------------------------------------ the server


@pytest.fixture(scope="module")
def client(tiny_run: Path) -> Any:
    from fastapi.testclient import TestClient

    from cnnlab.serve import create_app

    with TestClient(create_app(tiny_run), raise_server_exceptions=False) as c:
        yield c


def test_uploads_beyond_the_decode_slots_get_503_with_retry_after(client: Any, image: Path) -> None:
    slots = client.app.state.engine.slots
    files = {"file": ("x.png", image.read_bytes(), "image/png")}
    assert client.post("/api/predict", files=files).status_code == 200
    held = [slots._free.acquire(blocking=False) for _ in range(slots.slots)]  # every slot busy decoding
    try:
        start = time.perf_counter()
        r = client.post("/api/predict", files=files)
        assert time.perf_counter() - start >= slots.wait * 0.9  # it waited for a slot first
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["detail"].startswith(f"busy: {slots.slots} photo(s) are being decoded")
    finally:
        for ok in held:
            if ok:
                slots._free.release()
    assert client.post("/api/predict", files=files).status_code == 200  # free again


def test_a_request_waits_for_a_slot_freed_meanwhile(client: Any, image: Path) -> None:
    import threading

    slots = client.app.state.engine.slots
    held = [slots._free.acquire(blocking=False) for _ in range(slots.slots)]
    assert all(held)
    timer = threading.Timer(0.3, lambda: [slots._free.release() for _ in held])  # a decode ends meanwhile
    timer.start()
    try:
        r = client.post("/api/predict", files={"file": ("x.png", image.read_bytes(), "image/png")})
        assert r.status_code == 200, r.text
    finally:
        timer.join()


def test_decode_slots_follow_the_memory_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnlab.serve.uploads import DECODE_BYTES_PER_PIXEL, decode_slots

    monkeypatch.setenv("CNNLAB_MAX_MEMORY_GB", "1")
    assert decode_slots(100_000_000) == 1  # 800 MB a decode: one fits in 1 GiB
    monkeypatch.setenv("CNNLAB_MAX_MEMORY_GB", "64")
    assert decode_slots(1_000_000) == os.cpu_count()  # many fit: one per core
    assert decode_slots(2**30 // DECODE_BYTES_PER_PIXEL * 4) == min(os.cpu_count() or 1, 16)


def test_openapi_documents_every_error_status(client: Any) -> None:
    schema = client.get("/openapi.json").json()
    for path in ("/api/predict", "/api/explain", "/api/features", "/api/unit"):
        responses = schema["paths"][path]["post"]["responses"]
        assert {"200", "400", "413", "415", "422", "503"} <= set(responses), (path, sorted(responses))
        assert "Retry-After" in responses["503"]["headers"]
