"""Promotion and embeddings over REST and gRPC against the real API and embedder."""

from __future__ import annotations

import math
from typing import Any, Dict

import pytest

from images import png
from moco_client import EmbedError, MocoClient, MocoError
from conftest import env


@pytest.fixture(scope="module")
def model(client: MocoClient, trained: Dict[str, Any]) -> Dict[str, Any]:
    final = next(c for c in client.jobs.checkpoints(trained["job"]["id"]) if c["final"])
    promoted = client.models.promote(final["id"], alias="production")
    assert promoted["id"] == final["id"] and "production" in promoted["aliases"]
    return promoted


def test_promoted_models_are_listed(client: MocoClient, model: Dict[str, Any]) -> None:
    assert model["id"] in [m["id"] for m in client.models.list()]


def test_rest_and_grpc_give_the_same_vectors(client: MocoClient, model: Dict[str, Any]) -> None:
    images = [png(200, 0), png(201, 1), png(202, 0)]
    rest = client.embeddings.create(images, model_id=model["id"])
    grpc = client.embeddings.embed(images, model_id=model["id"], batch_size=2)
    assert grpc.model_id == rest["model_id"] == model["id"]
    assert grpc.embedding_space_id == rest["embedding_space_id"] == model["embedding_space_id"]
    assert len(grpc.vectors) == 3 and grpc.dim == rest["dim"] == len(rest["data"][0])
    for a, b in zip(grpc.vectors, rest["data"]):
        assert math.isclose(sum(x * x for x in a), 1, rel_tol=1e-4)
        assert all(math.isclose(x, y, abs_tol=1e-5) for x, y in zip(a, b))
    by_alias = client.embeddings.embed(images[:1], model="production", output="head", normalize=False)
    assert by_alias.alias == "production" and by_alias.model_id == model["id"] and by_alias.dim == 16


def test_grpc_errors_carry_the_status(client: MocoClient, model: Dict[str, Any]) -> None:
    with pytest.raises(EmbedError) as missing:
        client.embeddings.embed([png(1, 0)], model_id="ck_missing")
    assert missing.value.code == "NOT_FOUND"
    with MocoClient(env("MOCO_URL"), "mk_nope", grpc_address=env("MOCO_GRPC")) as stranger:
        with pytest.raises(EmbedError) as unauthenticated:
            stranger.embeddings.embed([png(1, 0)], model_id=model["id"])
    assert unauthenticated.value.code == "UNAUTHENTICATED"


def test_promotion_can_wait_until_the_embedder_serves_the_model(client: MocoClient, trained: Dict[str, Any]) -> None:
    earlier, final = list(client.jobs.checkpoints(trained["job"]["id"]))
    image = [png(7, 1)]
    assert client.models.promote(earlier["id"], alias="staging", wait_until_served=True)["id"] == earlier["id"]
    assert client.embeddings.embed(image, model="staging").model_id == earlier["id"]
    # The embedder serves "staging" from memory now: moving it means loading the other checkpoint.
    client.models.promote(final["id"], alias="staging", wait_until_served=True)
    assert client.embeddings.embed(image, model="staging").model_id == final["id"]
    with MocoClient(env("MOCO_URL"), env("MOCO_KEY")) as rest_only:
        with pytest.raises(MocoError, match="grpc_address"):
            rest_only.models.promote(final["id"], alias="staging", wait_until_served=True)
