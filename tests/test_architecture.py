"""The package's shape: no import cycle between its parts, one owner per protocol's knowledge."""

import ast
from pathlib import Path

from obliviate.bench.spec import PROTOCOLS

SRC = Path(__file__).resolve().parents[1] / "src" / "obliviate"


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _part(module: str) -> str | None:
    """The package part a module belongs to: obliviate.bench.x -> bench; the root -> None."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else None


def _imports(path: Path, module: str) -> set[str]:
    """Every obliviate module ``path`` imports, at any depth, outside ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(node, typing_only=False):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("obliviate"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                node.module.startswith("obliviate"):
            found.add(node.module)
            if node.module == "obliviate":  # from obliviate import llm, methods
                found.update(f"obliviate.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_no_import_cycle_between_parts():
    """Parts are subpackages and top-level modules; the root package, which imports all of
    them to build the public API, is outside the graph."""
    edges: dict[str, set[str]] = {}
    for module, path in _modules():
        src = _part(module)
        if src is None:
            continue
        for target in _imports(path, module):
            dst = _part(target)
            if dst is not None and dst != src:
                edges.setdefault(src, set()).add(dst)

    def cycle_from(start):
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in edges.get(node, ()):
                if nxt == start:
                    return [*trail, start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
        return None

    cycles = [c for c in (cycle_from(n) for n in sorted(edges)) if c]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def protocol_mentions(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) of each place ``source`` picks a protocol by name: a comparison with
    something called protocol (``rb.protocol.name == "challenge"``), a call of something called
    protocol (``PROTOCOLS.get("tofu")``, ``protocol_for(task, "quick")``, ``protocol="ulira"``),
    or a collection holding two protocol names or more (a table keyed by protocol). A string
    that only happens to equal a protocol's name (a size "toy", a layer "sequential") is none."""
    tree = ast.parse(source)
    exported = {id(c) for n in ast.walk(tree) if isinstance(n, ast.Assign)
                and any(getattr(t, "id", "") == "__all__" for t in n.targets)
                for c in ast.walk(n.value)}  # names of functions (evaluate.ulira), not protocols

    def named(nodes) -> list[ast.Constant]:
        return [c for node in nodes for c in ast.walk(node) if isinstance(c, ast.Constant)
                and isinstance(c.value, str) and c.value in names and id(c) not in exported]

    found: list[ast.Constant] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            for i, side in enumerate(sides):
                others = sides[:i] + sides[i + 1:]
                if any("protocol" in ast.unparse(o).lower() for o in others):
                    found += named([side])
        elif isinstance(node, ast.Call) and "protocol" in ast.unparse(node.func).lower():
            found += named(node.args)
        elif isinstance(node, ast.keyword) and node.arg and "protocol" in node.arg:
            found += named([node.value])
        elif isinstance(node, ast.Dict | ast.Tuple | ast.List | ast.Set):
            items = node.keys if isinstance(node, ast.Dict) else node.elts
            direct = [c for c in items if isinstance(c, ast.Constant) and c.value in names
                      and id(c) not in exported]
            if len({c.value for c in direct}) >= 2:
                found += direct
    return sorted({(c.lineno, c.value) for c in found})


def test_no_file_names_a_protocol_outside_its_spec():
    names = set(PROTOCOLS.names())
    assert {"quick", "challenge", "ulira", "tofu", "robustness"} <= names
    offenders = []
    for module, path in _modules():
        own = module.rsplit(".", 1)[1] if module.startswith("obliviate.bench.protocols.") else None
        for line, name in protocol_mentions(path.read_text(), names - {own}):
            offenders.append(f"{path.relative_to(SRC)}:{line} names '{name}'")
    assert not offenders, "\n".join(offenders)


def test_the_protocol_name_check_fires_on_choices_of_a_protocol_and_not_on_other_words():
    names = {"quick", "challenge", "toy"}
    picks = ('if rb.protocol.name == "challenge":\n    pass\n'
             'spec = PROTOCOLS.get("quick")\n'
             'run(protocol="challenge")\n'
             'PLOTS = {"quick": 1, "challenge": 2}\n')
    assert [n for _, n in protocol_mentions(picks, names)] == [
        "challenge", "quick", "challenge", "challenge", "quick"]
    words = ('size = param("toy", choices=("toy", "mini", "large"))\n'
             'if options.size == "toy":\n    pass\n'
             'label = "quick"\n')
    assert protocol_mentions(words, names) == []
