"""The layers, written once: components meet only through Kafka topics, so none imports another;
the kernel (config, event model, topics, Kafka helpers, provisioning in ``playscope/``) imports
no component;
the tools (local stack, demo, load generator, fault runs, capacity model, the CLI that starts
them all) sit above the components and may use them. Every import statement is read, those
inside functions too."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("collectors", "streams", "indexers", "alerts", "dashboards")
TOOLS = ("playscope.stack", "playscope.demo", "playscope.loadgen", "playscope.chaos", "playscope.capacity",
         "playscope.cli", "bench")


def _layer(module: str) -> str:
    if module.split(".")[0] in COMPONENTS:
        return module.split(".")[0]
    if any(module == tool or module.startswith(f"{tool}.") for tool in TOOLS):
        return "tools"
    return "kernel" if module.split(".")[0] == "playscope" else "outside"


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def _breaches() -> list[str]:
    found = []
    for package in (*COMPONENTS, "playscope", "bench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            layer = _layer(module)
            for line, target in _imports(path):
                to = _layer(target)
                allowed = (to in ("kernel", "outside") or to == layer or layer == "tools")
                if not allowed:
                    found.append(f"{path.relative_to(ROOT)}:{line}: {layer} imports {target} ({to})")
    return found


def test_components_import_only_the_kernel_and_the_kernel_no_component() -> None:
    assert _breaches() == []


def test_the_rule_sees_a_breach() -> None:
    assert _layer("collectors.http.app") == "collectors" and _layer("playscope.config") == "kernel"
    assert _layer("playscope.stack.fetch") == "tools" and _layer("bench.cli") == "tools"
    assert _layer("playscope.stackx") == "kernel"  # a prefix of a tool's name is not the tool
    sample = ROOT / "streams" / "__init__.py"
    assert all(target != "alerts" for _line, target in _imports(sample))
