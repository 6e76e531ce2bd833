"""House rules of ``src/cnnlab`` checked on the source: no import cycle, small modules, no copied blocks.

The import graph is read from every import statement (lazy ones inside functions and type-only ones under
``TYPE_CHECKING`` too), so a cycle hidden in a function body or in a type annotation fails as well.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import _imports

MAX_LINES = 400
BLOCK = 10


def test_no_import_cycle_in_src() -> None:
    found = _imports.cycles(_imports.graph())
    assert not found, f"import cycles: {found}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _imports.cycles(edges) == [["a", "b", "c"]]


def test_a_cycle_through_a_lazy_or_a_type_only_import_is_found(tmp_path: Path) -> None:
    pkg = tmp_path / "cnnlab"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "result.py").write_text("def show():\n    from .figure import draw\n    return draw\n")
    (pkg / "figure.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                   "    from .result import show\n")
    (pkg / "plain.py").write_text("import cnnlab.figure\n")
    edges = _imports.graph(tmp_path)
    assert edges["cnnlab.plain"] == {"cnnlab.figure"}
    assert _imports.cycles(edges) == [["cnnlab.figure", "cnnlab.result"]]


def test_the_registry_imports_no_provider() -> None:
    edges = _imports.graph()
    providers = {m for m in edges if m.startswith("cnnlab.models.") and m.split(".")[-1] in
                 ("course", "zoo_torchvision", "zoo_timm")}
    assert providers and not edges["cnnlab.models._registry"] & providers


def test_no_module_over_400_lines() -> None:
    big = {str(p.relative_to(_imports.SRC)): n for p in _imports.modules().values()
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"split these modules: {big}"


def _significant(path: Path) -> list[tuple[int, str]]:
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if text and not text.startswith("#"):
            out.append((i, text))
    return out


def duplicated_blocks(files: list[Path], block: int = BLOCK) -> list[tuple[str, str]]:
    """Places where ``block`` consecutive non-blank, non-comment lines appear twice (whitespace ignored)."""
    seen: dict[str, list[tuple[Path, int]]] = defaultdict(list)
    for path in files:
        lines = _significant(path)
        for k in range(len(lines) - block + 1):
            window = "\n".join(text for _, text in lines[k : k + block])
            seen[hashlib.sha1(window.encode()).hexdigest()].append((path, lines[k][0]))
    pairs = []
    for places in seen.values():
        first = places[0]
        for other in places[1:]:
            same_file_overlap = other[0] == first[0] and abs(other[1] - first[1]) < block
            if not same_file_overlap:
                pairs.append((f"{first[0].name}:{first[1]}", f"{other[0].name}:{other[1]}"))
    return pairs


def test_no_duplicated_block_of_10_lines_in_src() -> None:
    files = sorted(_imports.modules().values())
    pairs = duplicated_blocks(files)
    assert not pairs, f"the same {BLOCK} lines stand in two places: {pairs[:10]}"


def test_the_duplicate_finder_finds_a_copy(tmp_path: Path) -> None:
    body = "\n".join(f"x{i} = {i}" for i in range(12))
    (tmp_path / "a.py").write_text(body + "\n")
    (tmp_path / "b.py").write_text("y = 0\n" + body.replace("\n", "\n    ") + "\n")
    assert duplicated_blocks([tmp_path / "a.py", tmp_path / "b.py"])
