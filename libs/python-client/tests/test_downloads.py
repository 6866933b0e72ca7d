"""Downloads: a dataset's file as uploaded, and a checkpoint exported for other tools."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any, Dict

import pytest

from moco_client import MocoClient, NotFoundError


def test_a_dataset_downloads_as_uploaded(client: MocoClient, dataset: Dict[str, Any], tmp_path: Path) -> None:
    saved = client.datasets.download(dataset["id"], tmp_path / "photos.tar.gz")
    data = (tmp_path / "photos.tar.gz").read_bytes()
    assert len(data) == dataset["bytes"] and data[:2] == b"\x1f\x8b"
    assert saved == {"path": str(tmp_path / "photos.tar.gz"), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_checkpoints_export_as_onnx_and_pytorch(client: MocoClient, trained: Dict[str, Any], tmp_path: Path) -> None:
    final = next(c for c in client.jobs.checkpoints(trained["job"]["id"]) if c["final"])
    onnx = client.checkpoints.export(final["id"], tmp_path / "encoder.onnx", output="head")
    # An ONNX ModelProto starts with its ir_version field (1, varint).
    assert (tmp_path / "encoder.onnx").read_bytes()[:1] == b"\x08" and onnx["bytes"] > 1000
    client.checkpoints.export(final["id"], tmp_path / "checkpoint.pth.tar", format="pytorch")
    with zipfile.ZipFile(tmp_path / "checkpoint.pth.tar") as archive:
        assert any(name.endswith("data.pkl") for name in archive.namelist())
    with pytest.raises(NotFoundError):
        client.checkpoints.export("ckpt_00000000000000000000000000000000", tmp_path / "nothing.onnx")
    assert not list(tmp_path.glob("nothing.onnx*"))
