"""Collection rules for the whole checkout (pytest's rootdir).

``tests/mpi_scripts/`` holds scripts for ``mpiexec`` (``--doctest-modules`` would import,
i.e. run, them). The doctests of :mod:`toeplitz_conv.mpi` need the optional ``mpi``
extra; without it the module cannot be imported, so it is not collected
(``tests/test_mpi.py`` then skips, or fails under ``TOEPLITZ_CONV_NO_SKIPS=1``).
"""

from __future__ import annotations

import importlib.util

# The MPI scripts run under mpiexec, launched by tests/test_mpi.py; never import them here.
# docs/conf.py and the gallery scripts are run by Sphinx, not collected as modules.
collect_ignore_glob: list[str] = ["tests/mpi_scripts/*", "tests/typing/*", "docs/conf.py", "docs/figures/*"]
if importlib.util.find_spec("mpi4py") is None or importlib.util.find_spec("pylops_mpi") is None:
    collect_ignore_glob.append("src/toeplitz_conv/mpi/*")
# docs/networks.md's examples are torch models: without the torch extra they cannot run
# (under TOEPLITZ_CONV_REQUIRE_TORCH=1 torch is installed, so they always run in CI's main pass).
if importlib.util.find_spec("torch") is None:
    collect_ignore_glob.append("docs/networks.md")
