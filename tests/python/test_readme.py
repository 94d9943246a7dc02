"""The README's examples run as written (in a scratch folder, on loopback ports)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_examples_run(index, tmp_path):
    code = _blocks("python")[index]
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_serving_shell_example_runs(tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    (block,) = [b for b in _blocks("bash") if "ferrox serve" in b]
    # The ports as written may be taken on a test machine: the same commands on free ones.
    block = block.replace("8080", str(_free_port())).replace("8081", str(_free_port()))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    r = subprocess.run(["bash", "-ec", "set -m\n" + block], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert '"model_name":"demo"' in r.stdout and '"name":"predict"' in r.stdout
