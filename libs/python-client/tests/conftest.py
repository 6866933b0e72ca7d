"""Fixtures over the real services that test/python-client/python-client.test.ts starts (npm test):
MOCO_URL (API), MOCO_GRPC (embedder host:port), MOCO_KEY (a member key), MOCO_ADMIN_KEY.
Without them only the tests that need no service run."""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, Iterator, List

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from moco_client import MocoClient  # noqa: E402

from images import photos_tar_gz  # noqa: E402

# Small enough to train in seconds on one CPU core (64 images of 16x16: 2 steps per epoch).
TINY = {"epochs": 2, "width": 4, "dim": 16, "batch_size": 32, "K": 256}


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set: run through npm test (test/python-client/python-client.test.ts)")
    return value


@pytest.fixture(scope="session")
def client() -> Iterator[MocoClient]:
    with MocoClient(env("MOCO_URL"), env("MOCO_KEY"), grpc_address=env("MOCO_GRPC")) as c:
        yield c


@pytest.fixture(scope="session")
def admin() -> MocoClient:
    return MocoClient(env("MOCO_URL"), env("MOCO_ADMIN_KEY"))


@pytest.fixture(scope="session")
def dataset(client: MocoClient) -> Dict[str, Any]:
    return client.datasets.upload(photos_tar_gz(), name="photos")


@pytest.fixture(scope="session")
def trained(client: MocoClient, dataset: Dict[str, Any]) -> Dict[str, Any]:
    """A tiny job trained to the end, with every item its live stream carried."""
    job = client.jobs.create({"dataset_id": dataset["id"], "hyperparameters": TINY, "seed": 1, "checkpoint_every": 2, "metadata": {"suite": "python"}})
    items: List[Any] = []
    done = client.jobs.wait(job["id"], on_item=items.append)
    return {"job": done, "items": items, "warnings": job["warnings"]}
