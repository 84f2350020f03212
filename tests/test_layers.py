"""The package's layers, kept by a test: nothing imports upward.

validate -> build/apply -> analysis -> public modules -> cli/mpi/nn. A module may import
modules of its own layer or of a lower one, never of a higher one (function-level imports
included). A new module must be given a layer here. A module inside a package takes the layer of
its longest listed prefix: ``spectral._krylov`` is analysis while ``spectral`` (the package's
``__init__``) is public, so the engine modules inside ``spectral`` may not import its
``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "toeplitz_conv"

LAYERS: dict[str, int] = {
    # 0 validate: arguments -> a Layer, and the helpers every layer uses
    "_version": 0,
    "_public": 0,
    "_threads": 0,
    "_cache": 0,
    "_geometry": 0,
    "_arrays": 0,
    "_layer": 0,
    "_files": 0,
    "_torch": 0,
    "_tunables": 0,
    "_sizes": 0,
    "_typing": 0,
    # 1 build and apply: bands, assembled arrays, the planned passes
    "_pattern": 1,
    "_assemble": 1,
    "_build": 1,
    "_fft": 1,
    "_kernel": 1,
    "_plan": 1,
    "_compiled": 1,
    "_blas": 1,
    "_padding": 1,
    "_winograd": 1,
    "_winograd1d": 1,
    "_linop": 1,
    "_mtx": 1,
    "_mat": 1,
    # 2 analysis: symbols, Krylov, certificates, the formula
    "spectral._symbol": 2,
    "spectral._krylov": 2,
    "spectral._certify": 2,
    "spectral._blockgram": 2,
    "spectral._method": 2,
    "spectral._bracket": 2,
    "spectral._smallest": 2,
    "spectral._localize": 2,
    "_formula": 2,
    # 3 public modules
    "matrices": 3,
    "functional": 3,
    "operators": 3,
    "spectral": 3,
    "io": 3,
    "interop": 3,
    # 4 applications: the package namespace, the command line, MPI, networks
    "__init__": 4,
    "__main__": 4,
    "cli": 4,  # a package: cli._options, cli._parse, cli._commands, ... take its layer
    "mpi": 4,
    "nn": 4,
}


def _layer_of(module: str) -> int:
    """The layer of a module path relative to the package: its longest listed prefix.

    ``mpi._spec`` -> ``mpi``; ``spectral._krylov`` -> itself; ``spectral`` -> itself.
    """
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise AssertionError(f"toeplitz_conv.{module} has no layer in tests/test_layers.py: add one")


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def _imports(module: str, path: Path) -> list[tuple[int, str]]:
    """``(line, imported module relative to the package)`` for every intra-package import."""
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    if module == "__init__":
        package = []
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if not (node.module or "").startswith("toeplitz_conv"):
                    continue
                base = (node.module or "").split(".")[1:]
            else:
                up = node.level - 1
                base = package[: len(package) - up] if up else list(package)
                base = base + (node.module.split(".") if node.module else [])
            # `from . import x, y` (or `from toeplitz_conv import x`) names modules of a package
            of_package = node.module is None if node.level else node.module == "toeplitz_conv"
            if not of_package:
                found.append((node.lineno, ".".join(base)))
            else:
                found.extend((node.lineno, ".".join([*base, alias.name])) for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("toeplitz_conv."):
                    found.append((node.lineno, alias.name.split(".", 1)[1]))
    return found


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda v: str(v))
def test_no_module_imports_upward(module, path):
    own = _layer_of(module)
    upward = [
        f"line {line}: imports {target} (layer {_layer_of(target)})"
        for line, target in _imports(module, path)
        if _layer_of(target) > own
    ]
    assert not upward, f"toeplitz_conv.{module} (layer {own}) imports upward: {upward}"


def test_the_rule_catches_an_upward_import(tmp_path):
    """The check itself can fail: an engine module importing a public one is caught."""
    bad = tmp_path / "_symbol.py"
    bad.write_text(
        "from ..matrices import conv_matrix\nfrom . import _certify\n\n"
        "def f():\n    from .. import spectral\n"
    )
    targets = [target for _, target in _imports("spectral._symbol", bad)]
    assert targets == ["matrices", "spectral._certify", "spectral"]
    assert [_layer_of(t) > _layer_of("spectral._symbol") for t in targets] == [True, False, True]
