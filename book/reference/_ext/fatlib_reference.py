"""Sphinx extension of the library's reference (book/reference/): napoleon for functions and
classes only, and no borrowed docstrings on constants.

fatlib's docstrings are reStructuredText; a few use Google-style ``Args:`` / ``Returns:``
sections, which :mod:`sphinx.ext.napoleon` turns into field lists. Napoleon also reads the
first line of every attribute docstring (the ``#:`` comments) as ``type: description``, and
fatlib's attribute comments are prose that often holds a colon ("mini-batch size (FAT §V:
100)"): napoleon would cut them there and turn the words before the colon into a type. So this
extension runs napoleon on every docstring except those of attributes, data and properties.

A constant without a ``#:`` comment (``SAT = "sat"``), named in the reference with
``autodata``, would show the docstring of its type (``str``'s); it shows its name and value only.
"""

from __future__ import annotations

import inspect
from typing import Any

from sphinx.application import Sphinx
from sphinx.ext import napoleon

#: docstrings of these kinds are prose, left as they are
PROSE = frozenset({"attribute", "data", "property"})


def _napoleon_except_attributes(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what not in PROSE:
        napoleon._process_docstring(app, what, name, obj, options, lines)


def _no_type_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    type_doc = type(obj).__doc__
    if not (what in PROSE and isinstance(type_doc, str) and type_doc):
        return
    if "\n".join(lines).strip() == inspect.cleandoc(type_doc).strip():
        lines[:] = []


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.napoleon")
    listeners = app.events.listeners.get("autodoc-process-docstring", [])
    for listener in list(listeners):
        if listener.handler is napoleon._process_docstring:
            app.disconnect(listener.id)
    app.connect("autodoc-process-docstring", _napoleon_except_attributes)
    app.connect("autodoc-process-docstring", _no_type_docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
