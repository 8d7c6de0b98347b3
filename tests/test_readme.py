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
        ob.models.MODELS.remove("my-cnn")
    assert namespace["report"].metrics["RA"] > 0.9
    assert namespace["damped"] is not namespace["original"]
    assert namespace["cnn_board"].set_index("method").loc["retrain (reference)", "F"] > 0
    assert 0 <= namespace["bert_f"] <= 1
