"""The library's imports point one way (../docs: errors, _src <- spec <- data <- infinite <- finite <- study <-
estimate <- book), sit at the top of each module, and form no cycle; no module grows past MAX_LINES."""
import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib" / "ntkuq"
LAYERS = ["ntkuq.errors", "ntkuq._src", "ntkuq.spec", "ntkuq.data", "ntkuq.infinite", "ntkuq.finite", "ntkuq.study",
          "ntkuq.estimate", "ntkuq.book", "ntkuq.__main__"]
"""From the bottom up: a module imports only from its own layer or the ones below; the root package (it
re-exports the headline names) sits above them all."""
MAX_LINES = 450


def module_name(path: Path, lib: Path = LIB) -> str:
    parts = path.relative_to(lib.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(name: str) -> int:
    if name == "ntkuq":
        return len(LAYERS)
    ranks = [i for i, prefix in enumerate(LAYERS) if name == prefix or name.startswith(prefix + ".")]
    if not ranks:
        raise AssertionError(f"{name}: not in any layer of {LAYERS}; add it there")
    return ranks[0]


def imports(path: Path, modules: set, lib: Path = LIB):
    """(imported module, line, at top level) for every ntkuq import of a file; a name imported from a
    package that is itself a module counts as an import of that module."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    me = module_name(path, lib)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            if not base.startswith("ntkuq"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub if sub in modules else base, node.lineno, id(node) in top))
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in top) for a in node.names if a.name.startswith("ntkuq")]
    return out


def graph(lib: Path = LIB):
    files = {module_name(p, lib): p for p in lib.rglob("*.py")}
    return files, {m: imports(p, set(files), lib) for m, p in files.items()}


def problems(lib: Path = LIB):
    """Every function-level ntkuq import, upward import and import cycle, as messages."""
    files, edges = graph(lib)
    found = []
    for mod, imps in edges.items():
        for target, line, at_top in imps:
            where = f"{files[mod].relative_to(lib.parent)}:{line}"
            if not at_top:
                found.append(f"{where}: {target} imported inside a function or block (move it to the top)")
            if mod != "ntkuq" and layer(target) > layer(mod):
                found.append(f"{where}: {mod} imports {target} from a layer above it")
    graph_ = {m: {t for t, _, _ in imps if t in edges and t != m} for m, imps in edges.items()}
    state: dict = {}

    def visit(m, stack):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph_[m]):
            if state.get(t) == 1:
                found.append("import cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(graph_):
        if m not in state:
            visit(m, [])
    return found


def test_imports_point_down_at_the_top_and_form_no_cycle():
    found = problems()
    assert not found, "\n".join(found)


def test_no_module_is_too_long():
    long = {str(p.relative_to(LIB)): n for p in LIB.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_every_public_module_declares_its_api():
    missing = [str(p.relative_to(LIB)) for p in LIB.rglob("*.py")
               if p.name != "__main__.py" and "_src" not in p.parts and "__all__" not in p.read_text()]
    assert not missing, f"no __all__ in {missing}"


@pytest.mark.parametrize("bad, expect", [
    ("infinite/kernels.py", "from ntkuq.study.tables import select\n"),          # upward
    ("_src/storage.py", "def f():\n    from ntkuq.errors import DataError\n"),  # inside a function
    ("spec.py", "from ntkuq.spec import MLPSpec\n"),                              # a module importing itself: no
])
def test_the_checks_fail_on_a_bad_import(tmp_path, bad, expect):
    """Copy the library, add one bad import, and the check names it."""
    import shutil

    lib = tmp_path / "ntkuq"
    shutil.copytree(LIB, lib)
    (lib / bad).write_text((lib / bad).read_text() + "\n" + expect)
    found = problems(lib)
    if bad == "spec.py":
        assert not found  # a self-import is no edge: the check has no false positive here
    else:
        assert found and bad.split("/")[-1].split(".")[0] in "\n".join(found)


def test_a_cycle_is_found(tmp_path):
    import shutil

    lib = tmp_path / "ntkuq"
    shutil.copytree(LIB, lib)
    path = lib / "infinite" / "gains.py"
    path.write_text(path.read_text() + "\nfrom ntkuq.infinite.predict import predict\n")
    assert any(line.startswith("import cycle:") and "ntkuq.infinite.gains" in line for line in problems(lib))
