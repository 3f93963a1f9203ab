"""A Sphinx extension for the book's HTML: each script once per page.

Jupyter Book 1 registers the inline scripts of sphinx-thebe and
sphinx-togglebutton twice (seen in ``_build/html``: two
``const THEBE_JS_URL = ...`` blocks in every page's head), and the browser
then stops the second with "Identifier 'THEBE_JS_URL' has already been
declared". (The copies differ only in their file name, ``None`` in one and
``""`` in the other, so Sphinx's own check for duplicates lets both in.) The
page tests fail on any script error, so the second copy is dropped here, just before each page is written (Sphinx's ``html-page-context``
event, where ``script_files`` is the page's list of scripts).
"""

from __future__ import annotations

from typing import Any


def _one_copy_each(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    kept = []
    for script in scripts:
        # The file and attributes: the two copies differ only in the file being None or "".
        attributes = getattr(script, "attributes", None) or {}
        key = (str(getattr(script, "filename", None) or ""), tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _one_copy_each, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
