"""House rules of ``src/cnnlab`` checked on the source: no import cycle, no copied blocks, thin CLI skins.

A module is one concept, as long as that concept needs (no line limit: modules are split by concept).

The import graph is read from every import statement (lazy ones inside functions and type-only ones under
``TYPE_CHECKING`` too), so a cycle hidden in a function body or in a type annotation fails as well.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import _imports

#: The CLI is option declarations and printing only: all of ``_cli/`` stays within this many lines.
MAX_CLI_LINES = 1100
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


def test_the_cli_is_a_thin_skin() -> None:
    """``_cli/`` holds options and printing (the library holds every check), and only the app is shared."""
    cli = {name: path for name, path in _imports.modules().items() if name.startswith("cnnlab._cli")}
    lines = sum(len(path.read_text().splitlines()) for path in cli.values())
    assert lines <= MAX_CLI_LINES, f"_cli/ has {lines} lines; move checks and records into the library"
    edges = _imports.graph()
    crossed = {(m, t) for m in cli for t in edges[m] if t in cli and t != "cnnlab._cli._app"}
    assert not crossed, f"CLI modules import each other: {sorted(crossed)}"


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


def test_a_layer_spec_is_resolved_in_one_place() -> None:
    """``is_spec``/``build_from_spec`` are called from at most 2 modules (the spec source, course nets)."""
    import ast

    callers = set()
    for name, path in _imports.modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if called in ("is_spec", "build_from_spec"):
                    callers.add(name)
    assert len(callers) <= 2, f"layer specs resolved in {sorted(callers)}"


def test_one_memory_budget() -> None:
    """One ``check_memory`` (``cnnlab.memory``, GiB, ``CNNLAB_MAX_MEMORY_GB``); filter banks use it too."""
    import ast

    defined = [name for name, path in _imports.modules().items()
               for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.FunctionDef) and node.name == "check_memory"]
    assert defined == ["cnnlab.memory"]
    sources = "".join(path.read_text() for path in _imports.modules().values())
    assert "CNNLAB_FILTERS_MAX_MB" not in sources
