"""Sphinx configuration: ``pip install ".[docs]" && bash .ci/docs`` builds the site.

The build is offline (no intersphinx) and meant to be warning-free with
``sphinx-build -W --keep-going``; the gallery in ``../examples`` is executed.
"""

import os
import re
import warnings

import sklunlearn

project = "sklunlearn"
author = "the sklunlearn developers"
copyright = "the sklunlearn developers"
release = version = sklunlearn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.md5"]
templates_path = ["_templates"]

myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

html_theme = "pydata_sphinx_theme"
html_title = f"sklunlearn {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}

autosummary_generate = True
autodoc_typehints = "none"
autodoc_member_order = "groupwise"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": os.path.join(os.path.dirname(__file__), "..", "examples"),
    "gallery_dirs": "auto_examples",
    # Every example runs at build time; a failing one fails the build.
    "filename_pattern": r".*\.py$",
    "ignore_pattern": r"__init__\.py",
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "doc_module": ("sklunlearn",),
    "backreferences_dir": "generated/backreferences",
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "reset_modules": ("matplotlib",),
    "plot_gallery": "True",
    "show_memory": False,
    "min_reported_time": 5,
}

# Scikit-learn's own docstrings (the ``set_*_request`` methods the metadata
# router adds to every estimator) refer to scikit-learn's glossary, which an
# offline build cannot resolve; they are scikit-learn's to document.
_SKLEARN_ONLY = re.compile(r"set_\w+_request$")
# ``(n_features_in_,)`` in a numpydoc type reads as a reST link target; shown as code.
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\w])([A-Za-z]\w*_)(?=[,)\s])")
# scikit-learn's glossary terms, shown as code in an offline build.
_TERM = re.compile(r":term:`([^`<]+?)(?:\s*<[^>]+>)?`")


def _skip_member(app, what, name, obj, skip, options):
    if _SKLEARN_ONLY.match(name):
        return True
    return None


def _offline_docstring(app, what, name, obj, options, lines):
    for number, line in enumerate(lines):
        line = _TERM.sub(r"``\1``", line)
        if "of shape (" in line:
            head, _, shape = line.partition("of shape (")
            line = head + "of shape (" + _TRAILING_UNDERSCORE.sub(r"``\1``", shape)
        lines[number] = line


def setup(app):
    # numpydoc reads the "Fields" section of NamedTuple docstrings as unknown; the
    # fields are documented as attributes all the same.
    warnings.filterwarnings("ignore", "Unknown section Fields", UserWarning)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-docstring", _offline_docstring)
