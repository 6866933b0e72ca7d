"""The README's Python example (examples/readme_example.py), run as written in a folder holding its
files; only the addresses and the key come from the environment, as a user's would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from images import photos_tar_gz, png
from moco_client import MocoClient
from conftest import env

EXAMPLE = Path(__file__).parent.parent / "examples" / "readme_example.py"
README = Path(__file__).parents[3] / "README.md"


def test_the_readme_shows_the_example_as_it_is_tested() -> None:
    match = re.search(r"<!-- python-example -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert match and match.group(1) == EXAMPLE.read_text()


def test_the_readme_example_runs_and_prints_embeddings(tmp_path: Any, admin: MocoClient) -> None:
    (tmp_path / "photos.tar.gz").write_bytes(photos_tar_gz())
    (tmp_path / "cat.png").write_bytes(png(100, 0))
    (tmp_path / "dog.png").write_bytes(png(101, 1))
    package = str(EXAMPLE.parent.parent)
    # A project of its own, so that its "production" alias is the example's alone.
    key = admin.admin.keys.create(project_name="readme-example")["key"]
    run_env = {**os.environ, "MOCO_URL": env("MOCO_URL"), "MOCO_GRPC": env("MOCO_GRPC"), "MOCO_KEY": key, "PYTHONPATH": package}
    done = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "succeeded" and result["model"] is True and result["vectors"] == 2 and result["dim"] == 64
    assert re.fullmatch(r"es_[0-9a-f]{32}", result["embedding_space_id"])
    assert "uploaded 0/" in done.stderr

