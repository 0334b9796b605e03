"""Sphinx configuration for adamlab's documentation site.

Build (from the repository root, after ``pip install -e ".[docs]"``)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

The API reference is generated from the docstrings (autodoc + napoleon: they are reST with
``Args:`` sections); the Markdown pages go through MyST. Math is rendered in the browser by
MathJax, loaded from its CDN when a page is viewed; the build itself needs no network.
"""

from __future__ import annotations

import adamlab

project = "adamlab"
author = "adamlab developers"
copyright = "2026, adamlab developers"
release = adamlab.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# MyST: $...$ math in Markdown pages, anchors for headings (links such as lab.md#a-sweep).
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# autodoc: members in source order, signatures without the repeated type hints (they are in the
# Args: sections), and no import of optional dependencies at build time beyond the installed extras.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_default_options = {"show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"adamlab {release}"
