"""Imports go one way: records and errors at the bottom, then the store, the guard, the
scheduler and worker, and the CLI and web on top (docs/architecture.md). A module may
import modules of its own layer or below, never above; imports under TYPE_CHECKING and
inside functions (deliberately lazy) are not module-level dependencies."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "cronclaim"

LAYERS: list[set[str]] = [
    {"exceptions", "models", "durations"},
    {"clock"},
    {"store"},
    {"metrics"},
    {"heartbeat"},
    {"guard"},
    {"schedule"},
    {"jobs"},
    {"app", "alerts"},
    {"fanout", "audit", "replay", "status"},
    {"worker"},
    {"testing", "example", "cli", "web", "demo", "__main__", "__init__"},
]


def layer_of(module: str) -> int:
    top = module.split(".", maxsplit=1)[0]
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"cronclaim.{module} is in no layer; add it to tests/unit/test_layers.py")


def module_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("cronclaim."))
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.startswith("cronclaim."):
                    found.add(node.module)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return {name.removeprefix("cronclaim.") for name in found}


def test_imports_only_go_down_the_layers() -> None:
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(path.relative_to(SRC).with_suffix("").parts)
        here = layer_of(module)
        for imported in module_level_imports(path):
            if layer_of(imported) > here:
                upward.append(f"cronclaim.{module} imports cronclaim.{imported}")
    assert upward == []


def test_every_module_is_in_a_layer() -> None:
    for path in SRC.rglob("*.py"):
        layer_of(".".join(path.relative_to(SRC).with_suffix("").parts))
