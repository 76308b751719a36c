"""`examples/notebook.ipynb` runs: its code cells in order, in one
namespace, with plain Python (no Jupyter), from `examples/`; what each
prints is the output the notebook shows. `CEPHEID_BLESS=1` writes the
outputs again (read the diff)."""

import contextlib
import io
import json
import os
import unittest

from support import ROOT

NOTEBOOK = ROOT / "examples" / "notebook.ipynb"


def run_cells(notebook):
    """Each code cell's printed text, the cells run in order."""
    namespace = {"__name__": "__notebook__"}
    printed = []
    cwd = os.getcwd()
    os.chdir(NOTEBOOK.parent)
    try:
        for i, cell in enumerate(c for c in notebook["cells"] if c["cell_type"] == "code"):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile("".join(cell["source"]), f"notebook cell {i}", "exec"), namespace)
            printed.append(out.getvalue())
    finally:
        os.chdir(cwd)
    return printed, namespace


def shown(cell):
    """What a cell shows: the text of its standard output streams."""
    return "".join(
        "".join(o["text"]) for o in cell.get("outputs", []) if o.get("name") == "stdout"
    )


class Notebook(unittest.TestCase):
    def test_the_notebook_runs_and_shows_what_it_prints(self):
        with open(NOTEBOOK, encoding="utf-8") as f:
            notebook = json.load(f)
        printed, namespace = run_cells(notebook)
        code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
        if os.environ.get("CEPHEID_BLESS"):
            for n, (cell, text) in enumerate(zip(code, printed), 1):
                cell["execution_count"] = n
                cell["outputs"] = (
                    [{"name": "stdout", "output_type": "stream", "text": text.splitlines(True)}]
                    if text
                    else []
                )
            with open(NOTEBOOK, "w", encoding="utf-8") as f:
                json.dump(notebook, f, indent=1, ensure_ascii=False)
                f.write("\n")
        for i, (cell, text) in enumerate(zip(code, printed)):
            self.assertEqual(shown(cell), text, f"code cell {i} (CEPHEID_BLESS=1 writes it)")
        # what the walk-through is about
        decisions = namespace["decisions"]
        self.assertEqual(len(decisions), 10)
        self.assertEqual(namespace["outcomes"][("payment", "review")], 2)
        self.assertIn("payment_velocity", namespace["fired"])


if __name__ == "__main__":
    unittest.main()
