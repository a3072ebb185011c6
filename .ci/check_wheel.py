"""Build labtrack's wheel from a clean copy of the sources, install it into a throwaway virtual
environment with Node.js off the PATH, and check that Jupyter Server and JupyterLab both
report labtrack enabled and OK — the prebuilt side panel needs no Node on a user's machine.

Run by .ci/run (the build itself needs Node and npm; the install and the checks must not).
Exit status 1 with the reason when a check fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# What the wheel must hold: the prebuilt side panel where JupyterLab looks for it, the file
# that marks it as pip-managed, the server extension's auto-enable and the widgets' bundles.
WHEEL_FILES = [
    r"labtrack-[^/]+\.data/data/share/jupyter/labextensions/labtrack/package\.json",
    r"labtrack-[^/]+\.data/data/share/jupyter/labextensions/labtrack/install\.json",
    r"labtrack-[^/]+\.data/data/share/jupyter/labextensions/labtrack/static/remoteEntry\.[0-9a-f]+\.js",
    r"labtrack-[^/]+\.data/data/share/jupyter/labextensions/labtrack/static/style\.js",
    r"labtrack-[^/]+\.data/data/etc/jupyter/jupyter_server_config\.d/labtrack\.json",
    r"labtrack/widgets/static/live_run\.js",
]


def fail(message: str) -> None:
    print(f"check_wheel: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def run(command: list, **kwargs) -> str:
    print("check_wheel: $", " ".join(str(c) for c in command), flush=True)
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    output = ANSI.sub("", result.stdout + result.stderr)
    if result.returncode != 0:
        fail(f"{command[0]} exited with {result.returncode}:\n{output[-6000:]}")
    return output


def copy_sources(target: Path) -> None:
    """The files git tracks or would track (not node_modules, not earlier build outputs)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="labtrack-wheel-") as scratch:
        scratch = Path(scratch)
        sources, dist = scratch / "src", scratch / "dist"
        copy_sources(sources)
        # pip builds in an isolated environment: hatchling runs the npm build (with Node).
        run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist, sources])
        wheels = list(dist.glob("labtrack-*.whl"))
        if len(wheels) != 1:
            fail(f"expected one labtrack wheel in {dist}, found {wheels}")
        wheel = wheels[0]
        names = zipfile.ZipFile(wheel).namelist()
        for pattern in WHEEL_FILES:
            if not any(re.fullmatch(pattern, name) for name in names):
                fail(f"{wheel.name} has no file matching {pattern}")

        environment = scratch / "venv"
        venv.create(environment, with_pip=True)
        bin_dir = environment / ("Scripts" if os.name == "nt" else "bin")
        env = {key: value for key, value in os.environ.items()
               if key not in ("VIRTUAL_ENV", "PYTHONPATH", "JUPYTER_PATH", "NODE_PATH")}
        env.update({
            "PATH": str(bin_dir),  # the venv only: no node, no npm
            "JUPYTER_CONFIG_DIR": str(scratch / "jupyter-config"),
            "JUPYTER_DATA_DIR": str(scratch / "jupyter-data"),
            "JUPYTER_RUNTIME_DIR": str(scratch / "jupyter-runtime"),
        })
        for tool in ("node", "npm", "jlpm"):
            found = shutil.which(tool, path=env["PATH"])
            if found:
                fail(f"{tool} is on the check's PATH ({found}); the check needs a PATH without it")
        run([bin_dir / "python", "-m", "pip", "install", "--quiet", wheel, "jupyterlab>=4.6,<5"],
            env=env)

        labextensions = run([bin_dir / "jupyter", "labextension", "list"], env=env)
        if not re.search(r"^\s*labtrack v\S+ enabled OK \(python, labtrack\)", labextensions,
                         re.MULTILINE):
            fail(f"`jupyter labextension list` does not show labtrack enabled and OK:\n"
                 f"{labextensions}")
        server = run([bin_dir / "jupyter", "server", "extension", "list"], env=env)
        if not (re.search(r"^\s*labtrack enabled\s*$", server, re.MULTILINE)
                and re.search(r"^\s*labtrack \S+ OK\s*$", server, re.MULTILINE)):
            fail(f"`jupyter server extension list` does not show labtrack enabled and OK:\n"
                 f"{server}")
        print(f"check_wheel: {wheel.name} installs without Node; JupyterLab and Jupyter Server "
              "report labtrack enabled and OK.")


if __name__ == "__main__":
    main()
