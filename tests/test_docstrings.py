"""Every public function and class of the library documents itself in one style (Google, as optax): a summary,
`Args:` naming every parameter, `Returns:` when it returns something, `Raises:` when its own body raises; the
headline functions carry a runnable `Example:` (run by doctest in the test command)."""
import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib" / "ntkuq"
HEADLINE = {"infinite/kernels.py": "kernels", "infinite/predict.py": "ntk_prediction",
            "infinite/lossstats.py": "loss_stats", "infinite/sweep.py": "nested_sweep",
            "finite/ensembles.py": "train_ensemble", "estimate/core.py": "estimate"}


def public_definitions():
    """(path, node) of every function and class named in a public module's __all__ (methods of those classes
    included when public)."""
    for path in sorted(LIB.rglob("*.py")):
        if "_src" in path.parts or path.name.startswith("__"):
            continue
        tree = ast.parse(path.read_text())
        names = set()
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
                names = {e.value for e in node.value.elts}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
                yield path, node


def problems(path, node):
    doc = ast.get_docstring(node) or ""
    where = f"{path.relative_to(LIB)}:{node.lineno} {node.name}"
    if not doc:
        return [f"{where}: no docstring"]
    out = []
    if isinstance(node, ast.FunctionDef):
        args = [a.arg for a in node.args.args + node.args.kwonlyargs if a.arg not in ("self", "cls")]
        if node.args.vararg:
            args.append(node.args.vararg.arg)
        if node.args.kwarg:
            args.append(node.args.kwarg.arg)
        if args and "Args:" not in doc:
            out.append(f"{where}: no Args: section for {args}")
        none = isinstance(node.returns, ast.Constant) and node.returns.value is None
        returns = node.returns is not None and not none
        if returns and "Returns:" not in doc and "Yields:" not in doc:
            out.append(f"{where}: no Returns: section")
        own_raise = any(isinstance(n, ast.Raise) for n in ast.walk(node))
        if own_raise and "Raises:" not in doc:
            out.append(f"{where}: raises, but no Raises: section")
    return out


def test_every_public_definition_is_documented_in_one_style():
    found = [p for path, node in public_definitions() for p in problems(path, node)]
    assert not found, f"{len(found)} docstring problems:\n" + "\n".join(found)


@pytest.mark.parametrize("module, name", sorted(HEADLINE.items()))
def test_headline_functions_have_a_runnable_example(module, name):
    tree = ast.parse((LIB / module).read_text())
    (node,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    doc = ast.get_docstring(node)
    assert "Example:" in doc and ">>> " in doc, f"{module} {name}: no Example: with >>> lines"
