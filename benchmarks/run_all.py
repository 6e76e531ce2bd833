"""Run every benchmark side by side and rebuild BENCHMARKS.md from their results (`make bench`).

Each benchmark script writes ``benchmarks/results/<name>.json`` and ``benchmarks/results/<name>.md``;
this script runs them in order (or only those named on the command line) and concatenates the markdown
sections into BENCHMARKS.md, so every figure there comes from a command anyone can re-run.

Usage:
    python benchmarks/run_all.py                 # all benchmarks, then BENCHMARKS.md
    python benchmarks/run_all.py filters cam     # only these, then BENCHMARKS.md
    python benchmarks/run_all.py --collect       # only rebuild BENCHMARKS.md from existing results
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
# Cheap ones first so a cut-short run still records something.
ORDER = ["startup", "filters", "data_loading", "predict", "train_throughput", "cam", "dream", "scorecam",
         "ddp", "scale", "accuracy", "transfer", "serve", "series", "gpu"]
# Sections written by a script of another name, or with arguments (default: benchmarks/<name>.py).
COMMANDS = {"scorecam": ["cam.py", "--method", "scorecam", "--threads", "1"]}

HEADER = """# Benchmarks

Every figure below was written by the benchmark script named in its section (run them all with
`make bench`, or one with `python benchmarks/<name>.py`). Performance figures are ratios measured side by
side in one run on the same machine (medians of at least 3 repeats), never absolute times from another run.
The machine: 2 CPU cores, no GPU.

"""


def collect() -> Path:
    """Concatenate the per-benchmark markdown sections into BENCHMARKS.md (atomically)."""
    sys.path.insert(0, str(ROOT / "src"))
    from cnnlab._io import write_text

    parts = [HEADER]
    for name in ORDER:
        md = RESULTS / f"{name}.md"
        script, *extra = COMMANDS.get(name, [f"{name}.py"])
        missing = f"## {name}\n\nNot run yet: `python benchmarks/{' '.join([script, *extra])}`.\n\n"
        parts.append(md.read_text().strip() + "\n\n" if md.exists() else missing)
    return write_text(ROOT / "BENCHMARKS.md", "".join(parts).rstrip() + "\n")


def main() -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(ORDER)})")
    parser.add_argument("--collect", action="store_true", help="only rebuild BENCHMARKS.md")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(ORDER))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    failed = []
    if not args.collect:
        for name in args.names or ORDER:
            script, *extra = COMMANDS.get(name, [f"{name}.py"])
            print(f"== benchmarks/{' '.join([script, *extra])}", flush=True)
            rc = subprocess.call([sys.executable, str(HERE / script), *extra], cwd=ROOT)
            if rc != 0:
                failed.append(name)
    print(f"wrote {collect()}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
