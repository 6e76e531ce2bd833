"""Run ``cnnlab train ARGS`` and SIGKILL the process at its N-th event (the fault-injection driver).

Usage: ``python _killer.py LOG KILL_AT -- train ARGS...``

An event is one training step (a batch), one ``write()`` to a file cnnlab writes atomically
(checkpoints, metrics.csv, run.json, model.safetensors: the temporary file, before its rename) or one
``os.replace`` (the rename that publishes a file). Each event is appended to LOG as ``index kind name``
before it happens; at event KILL_AT (1-based) the process kills itself with SIGKILL, as ``kill -9``
or a power cut would: no ``finally``, no ``atexit``, half-written temporary files stay. KILL_AT 0 runs
to the end (the counting pass, which is also the uninterrupted reference run).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any


def main() -> None:
    log_path, kill_at = Path(sys.argv[1]), int(sys.argv[2])
    args = sys.argv[sys.argv.index("--") + 1:]
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - line-buffered, outlives every event
    count = [0]

    def event(kind: str, name: str) -> None:
        count[0] += 1
        log.write(f"{count[0]} {kind} {name}\n")
        if count[0] == kill_at:
            log.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    import lightning as L

    import cnnlab._io as io
    from cnnlab.train import run as run_module

    class Counted:
        def __init__(self, fh: Any, name: str) -> None:
            self._fh, self._name = fh, name

        def write(self, data: Any) -> Any:
            event("write", self._name)
            return self._fh.write(data)

        def __getattr__(self, attr: str) -> Any:
            return getattr(self._fh, attr)

        def __enter__(self) -> Counted:
            return self

        def __exit__(self, *exc: Any) -> None:
            self._fh.close()

    real_open, real_replace = open, os.replace

    def counted_open(path: Any, *a: Any, **kw: Any) -> Any:
        temp = io._TEMP_NAME.match(Path(path).name)  # the destination a temporary file stands for
        return Counted(real_open(path, *a, **kw), temp["dest"] if temp else Path(path).name)

    def counted_replace(src: Any, dst: Any, *a: Any, **kw: Any) -> None:
        event("replace", Path(dst).name)
        real_replace(src, dst, *a, **kw)

    class Steps(L.Callback):
        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, i: int) -> None:
            event("batch", f"epoch{trainer.current_epoch + 1}")

    io.open = counted_open  # type: ignore[attr-defined]  # the name _atomic_open looks up
    os.replace = counted_replace
    real_build = run_module.build_trainer
    run_module.build_trainer = lambda cfg, run_dir, callbacks, **kw: real_build(  # type: ignore[assignment]
        cfg, run_dir, [*callbacks, Steps()], **kw)

    from cnnlab.cli import app

    app(args=args, prog_name="cnnlab")


if __name__ == "__main__":
    main()
