"""The README's Python snippets run as written (examples that are never run rot)."""

import re

from conftest import REPO


def test_readme_python_snippets_run():
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)
    finally:
        import obliviate as ob

        ob.METHODS.remove("damp-head")
    assert namespace["report"].metrics["RA"] > 0.9
    assert namespace["damped"] is not namespace["original"]
