"""analysis/media/ is a layer: no import cycles inside it, and nothing in it imports the tasks
or the views (which import it). Every import counts, those inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

MEDIA = Path(__file__).resolve().parent.parent / "analysis" / "media"
FORBIDDEN = ("analysis.tasks", "analysis.views", "analysis.consumers", "gemma_web")


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            # "from analysis.media import images" names modules of the package.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def media_graph() -> dict[str, set[str]]:
    modules = {f"analysis.media.{p.stem}": p for p in MEDIA.glob("*.py") if p.stem != "__init__"}
    return {name: imports_of(path) & set(modules) - {name} for name, path in modules.items()}


def test_no_media_module_imports_tasks_or_views():
    for path in MEDIA.glob("*.py"):
        bad = {m for m in imports_of(path) if m.startswith(FORBIDDEN)}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_there_is_no_import_cycle_among_media_modules():
    graph = media_graph()
    assert len(graph) > 10  # the walk found the package
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            assert state.get(target) != "open", " -> ".join([*trail, name, target])
            if target not in state:
                visit(target, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_the_walk_sees_an_import_inside_a_function(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from analysis.tasks import process_media\n")
    assert "analysis.tasks" in imports_of(source)
