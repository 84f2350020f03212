"""Sphinx configuration for the toeplitz_conv documentation site.

Build it with ``python -m sphinx -W -b html docs docs/_build/html`` after
``pip install -e ".[docs]"``.  The API reference is generated from the numpydoc
docstrings; the figures in the gallery are drawn from ``docs/figures/*.py`` at
build time (matplotlib's plot directive), so they always show the current code.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "src")))

import toeplitz_conv

project = "toeplitz_conv"
author = "the toeplitz_conv developers"
copyright = "2026, the toeplitz_conv developers"
release = toeplitz_conv.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "matplotlib.sphinxext.plot_directive",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "generated/*.md", "figures/*.py"]
templates_path = ["_templates"]

myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.figsize": (7.0, 3.2)}

html_theme = "alabaster"
html_title = f"toeplitz_conv {release}"
html_theme_options = {
    "description": "The exact matrix of a convolution layer",
    "fixed_sidebar": True,
}
