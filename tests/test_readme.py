"""The README's command 1, run as written by bash with `python3`, `pip` and `nvidia-smi` stood in
for by scripts that log their arguments: on a machine without a GPU it installs PyTorch's CPU
build before the requirements, with one it does not; as root and as a normal user."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CPU_TORCH = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"

# `python3 -m venv .venv` makes a .venv whose activate puts logging pip and python first
PYTHON3 = """#!/bin/sh
mkdir -p .venv/bin
for tool in pip python; do
  printf '#!/bin/sh\\necho "%s $*" >> "$LOG"\\n' "$tool" > .venv/bin/$tool
  chmod +x .venv/bin/$tool
done
echo 'PATH="$PWD/.venv/bin:$PATH"' > .venv/bin/activate
echo "python3 $*" >> "$LOG"
"""


def command_1() -> str:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n# 1\..*?\n(.*?)```", readme, re.S).group(1)
    (line,) = [text for text in block.splitlines() if text.strip()]  # one line to copy
    return line


def run_as(user: str | None, gpu: bool) -> list[str]:
    """The commands command 1 ran, in order, in a fresh folder with only the stand-ins and the
    shell's basic tools on the PATH."""
    folder = Path(tempfile.mkdtemp(prefix="par-readme-"))
    try:
        stubs = folder / "stubs"
        stubs.mkdir()
        (stubs / "python3").write_text(PYTHON3)
        if gpu:
            (stubs / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
        for stub in stubs.iterdir():
            stub.chmod(0o755)
        work = folder / "checkout"
        work.mkdir()
        log = folder / "log"
        log.touch()
        for path in (folder, work, log):
            path.chmod(0o777)
        env = {"PATH": f"{stubs}:/usr/bin:/bin", "LOG": str(log), "HOME": str(folder)}
        shell = ["bash", "-c", command_1()]
        if user is not None:
            shell = [shutil.which("runuser"), "-u", user, "--"] + shell
        subprocess.run(shell, cwd=work, env=env, check=True, timeout=60)
        return log.read_text().splitlines()
    finally:
        shutil.rmtree(folder)


def users() -> list[str | None]:
    """Who can run it here: this user, and a normal one when the tests run as root."""
    if os.geteuid() == 0 and shutil.which("runuser"):
        return [None, "nobody"]
    return [None]


@pytest.mark.skipif(shutil.which("nvidia-smi", path="/usr/bin:/bin") is not None,
                    reason="a real nvidia-smi is on the PATH the command runs with")
@pytest.mark.parametrize("user", users())
def test_command_1_takes_the_cpu_build_first_without_a_gpu(user):
    ran = run_as(user, gpu=False)
    assert ran == ["python3 -m venv .venv", CPU_TORCH, "pip install -r requirements.txt",
                   "python app.py"]


@pytest.mark.parametrize("user", users())
def test_command_1_leaves_pypi_its_cuda_build_with_a_gpu(user):
    ran = run_as(user, gpu=True)
    assert ran == ["python3 -m venv .venv", "pip install -r requirements.txt", "python app.py"]
