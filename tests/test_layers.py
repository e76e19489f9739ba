"""One-way layers: the import graph of the package (module-level and function-level imports) has no cycle,
nothing imports the entry point, and loading a model never reaches pretraining."""

import ast

from bench.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "bench"


def import_graph() -> dict[str, set[str]]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps |= {resolve(a.name) for a in node.names if a.name.startswith("bench")}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("bench"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    deps.add(full if full in modules else resolve(node.module))
        graph[name] = {d for d in deps if d and d != name}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    cycles = sorted(m for m in graph if m in reachable(graph, m))
    assert cycles == [], f"modules on an import cycle: {cycles}"


def test_nothing_imports_the_entry_point():
    graph = import_graph()
    assert [m for m, deps in graph.items() if "bench.run" in deps] == []


def test_loading_a_model_never_reaches_pretraining_or_runners():
    below = reachable(import_graph(), "bench.backbones.loading")
    assert not {m for m in below if m.startswith(("bench.pretrain.build", "bench.pretrain.train", "bench.pretrain.publish",
                                                  "bench.lama.runner", "bench.superglue.runner", "bench.superglue.task", "bench.job"))}


def test_a_graph_with_a_cycle_is_caught():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert sorted(m for m in graph if m in reachable(graph, m)) == ["a", "b", "c"]
