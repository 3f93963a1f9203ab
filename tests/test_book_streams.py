"""book.repair_merged_streams: executed notebooks without myst-nb's duplicated stream outputs."""

from __future__ import annotations

import shutil
import uuid

import nbformat

from containerlab import book, config


def test_repair_keeps_the_merged_stream_and_drops_its_duplicates():
    """Are the later stdout outputs dropped, while the first (holding all text) and other outputs stay?"""
    folder = config.CACHE_DIR / "tests" / uuid.uuid4().hex[:10]
    folder.mkdir(parents=True)
    try:
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("print('a'); print('b'); 1")
        # What myst-nb writes with nb_merge_streams: the first stream already holds "a" and "b".
        cell.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text="a\nb\n"),
            nbformat.v4.new_output("stream", name="stdout", text="b\n"),
            nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=1),
        ]
        nb.cells.append(cell)
        nbformat.write(nb, folder / "page.ipynb")

        assert book.repair_merged_streams(folder) == 1
        outputs = nbformat.read(folder / "page.ipynb", as_version=4).cells[0].outputs
        assert [o.output_type for o in outputs] == ["stream", "execute_result"]
        assert outputs[0].text == "a\nb\n"
        assert book.repair_merged_streams(folder) == 0  # a second pass changes nothing
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_book_config_merges_streams():
    """Does _config.yml merge streams, the case the repair is made for?"""
    assert book._merges_streams()
