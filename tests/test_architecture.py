"""The package's layering, checked on its source: every import follows the data flow
data -> models -> engine -> evaluation -> tracking -> workflows -> cli, and only tracking speaks
MLflow. Lazy imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ecg_platform"
LAYERS = ("data", "models", "engine", "evaluation", "tracking", "workflows", "cli")
SHARED = {"errors", "__init__", "__main__"}  # below every layer, or the package's entry point
MLFLOW_LAYERS = {"tracking"}


def _layer(module: str) -> str | None:
    """`ecg_platform.engine.trainer` -> `engine`; None for a module every layer may use."""
    parts = module.split(".")
    if parts[0] != "ecg_platform" or len(parts) < 2 or parts[1] in SHARED:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import statement in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _violations() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = _layer("ecg_platform." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        for line, module in _imports(path):
            where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
            if module.split(".")[0] == "mlflow" and own not in MLFLOW_LAYERS:
                problems.append(f"{where} (only {', '.join(MLFLOW_LAYERS)} may import mlflow)")
            target = _layer(module)
            if own and target and LAYERS.index(target) > LAYERS.index(own):
                problems.append(f"{where} (against the flow {' -> '.join(LAYERS)})")
    return problems


def test_every_import_follows_the_data_flow() -> None:
    assert _violations() == []


def test_the_check_sees_a_backward_import(tmp_path: Path, monkeypatch) -> None:
    """The control: a data module importing the workflows is reported."""
    fake = tmp_path / "ecg_platform"
    (fake / "data").mkdir(parents=True)
    (fake / "data" / "bad.py").write_text("def f():\n    import ecg_platform.workflows.x\n")
    monkeypatch.setattr(f"{__name__}.PACKAGE", fake)
    assert _violations() == [
        "ecg_platform/data/bad.py:2 imports ecg_platform.workflows.x "
        f"(against the flow {' -> '.join(LAYERS)})"
    ]
