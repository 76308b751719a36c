"""The package's documentation runs: the README's example prints what its
comments say, and the docstrings' examples pass (doctest)."""

import contextlib
import doctest
import io
import os
import re
import unittest

import cepheid

from support import ROOT

README = ROOT / "crates" / "python" / "README.md"


class Docs(unittest.TestCase):
    def test_the_readme_example_prints_what_it_says(self):
        text = README.read_text(encoding="utf-8")
        blocks = re.findall(r"```python\n(.*?)```", text, re.S)
        self.assertTrue(blocks)
        for block in blocks:
            # each `print(...)` is followed by a comment saying what it
            # prints: on its own line, or after the call
            said = []
            for line in block.splitlines():
                if line.strip().startswith("# "):
                    said.append(line.strip()[2:])
                elif "print(" in line and ")  # " in line:
                    said.append(line.split(")  # ", 1)[1])
            out = io.StringIO()
            cwd = os.getcwd()
            os.chdir(ROOT)
            try:
                with contextlib.redirect_stdout(out):
                    exec(compile(block, "README.md", "exec"), {})
            finally:
                os.chdir(cwd)
            printed = out.getvalue().splitlines()
            self.assertEqual(printed, said)

    def test_the_docstrings_examples_pass(self):
        failures, tried = doctest.testmod(cepheid, verbose=False)
        self.assertGreater(tried, 0)
        self.assertEqual(failures, 0)


if __name__ == "__main__":
    unittest.main()
