"""The REST methods against the real API: datasets, jobs and their stream, typed errors, retries, admin."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any, Dict, List, Tuple

import pytest

from images import photos_tar_gz
from moco_client import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    JobEvent,
    MetricPoints,
    MocoClient,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableError,
)
from conftest import TINY, env


def test_upload_reports_progress_and_the_dataset_is_listed(client: MocoClient, tmp_path: Any) -> None:
    path = tmp_path / "more photos.tar.gz"
    path.write_bytes(photos_tar_gz(32))
    progress: List[Tuple[int, Any]] = []
    ds = client.datasets.upload(str(path), name="more", on_progress=lambda sent, total: progress.append((sent, total)))
    assert ds["status"] == "ready" and ds["image_count"] == 32 and ds["name"] == "more"
    size = path.stat().st_size
    assert progress[0] == (0, size) and progress[-1] == (size, size)
    assert [sent for sent, _ in progress] == sorted(sent for sent, _ in progress)
    assert client.datasets.get(ds["id"])["id"] == ds["id"]
    assert ds["id"] in [d["id"] for d in client.datasets.list(page_size=1)]


def test_preview_resolves_a_job_and_samples_show_the_dataset(client: MocoClient, dataset: Dict[str, Any]) -> None:
    # Nothing is created: the preview resolves the request as create would, the recipe filling the rest.
    preview = client.jobs.preview({"dataset_id": dataset["id"], "hyperparameters": TINY})
    assert {k: preview["hyperparameters"][k] for k in TINY} == TINY and len(preview["hyperparameters"]) > len(TINY)
    steps_per_epoch = dataset["image_count"] // TINY["batch_size"]
    assert preview["steps_per_epoch"] == steps_per_epoch and preview["total_steps"] == TINY["epochs"] * steps_per_epoch
    with pytest.raises(InvalidRequestError) as invalid:
        client.jobs.preview({"dataset_id": dataset["id"], "hyperparameters": {"K": 10, "batch_size": 64}})
    assert invalid.value.param.startswith("hyperparameters.")
    samples = client.datasets.samples(dataset["id"], n=3)
    assert samples["dataset_id"] == dataset["id"] and len(samples["data"]) == 3
    assert all(base64.b64decode(s["png"])[:8] == b"\x89PNG\r\n\x1a\n" for s in samples["data"])
    names = dataset["class_names"]
    assert [s["class_name"] for s in samples["data"]] == [names[s["label"]] for s in samples["data"]]
    assert sum(dataset["class_counts"]) == dataset["image_count"]


def test_errors_are_typed_with_the_api_code(client: MocoClient, dataset: Dict[str, Any]) -> None:
    with pytest.raises(UnprocessableError) as bad:
        client.datasets.upload(b"not a dataset", filename="x.tar")
    assert bad.value.status == 422 and bad.value.code == "invalid_dataset"
    with pytest.raises(NotFoundError) as missing:
        client.jobs.get("job_missing")
    assert missing.value.code == "not_found" and missing.value.request_id
    with pytest.raises(InvalidRequestError) as invalid:
        client.jobs.create({"dataset_id": dataset["id"], "hyperparameters": {"K": 10, "batch_size": 64}})
    assert invalid.value.code == "invalid_parameter" and invalid.value.param.startswith("hyperparameters.")
    key = str(uuid.uuid4())
    client.jobs.create({"dataset_id": dataset["id"], "hyperparameters": TINY, "metadata": {"suite": "conflict"}}, idempotency_key=key)
    with pytest.raises(ConflictError) as conflict:
        client.jobs.create({"dataset_id": dataset["id"], "hyperparameters": TINY}, idempotency_key=key)
    assert conflict.value.code == "idempotency_conflict"
    with pytest.raises(PermissionDeniedError):
        client.admin.queue()
    with pytest.raises(AuthenticationError) as unauthorized:
        MocoClient(env("MOCO_URL"), "mk_nope").jobs.get("job_missing")
    assert unauthorized.value.code == "unauthorized"


def test_a_job_trains_with_its_live_stream_metrics_and_checkpoints(client: MocoClient, trained: Dict[str, Any]) -> None:
    job, items = trained["job"], trained["items"]
    assert job["status"] == "succeeded" and job["progress"]["step"] == 4
    types = [i.event["type"] for i in items if isinstance(i, JobEvent)]
    # The warnings the create answer carried (a tiny dataset for these settings) follow "created" as events.
    warned = len(trained["warnings"])
    assert [i.event["data"] for i in items if isinstance(i, JobEvent) and i.event["type"] == "warning"] == trained["warnings"]
    assert types[: 2 + warned] == ["created", *["warning"] * warned, "started"] and types[-1] == "succeeded"
    ids = [i.event["id"] for i in items if isinstance(i, JobEvent)]
    assert ids == sorted(set(ids))  # in order, none twice
    assert any(isinstance(i, MetricPoints) for i in items)
    assert [e["type"] for e in client.jobs.event_page(job["id"], limit=2 + warned)["data"]] == types[: 2 + warned]
    # Resuming after an event id yields only what followed it.
    resumed = [i.event["id"] for i in client.jobs.events(job["id"], after=ids[-3]) if isinstance(i, JobEvent)]
    assert resumed == ids[-2:]
    loss = client.jobs.metrics(job["id"], names=["loss"])["data"][0]
    assert [step for step, _ in loss["points"]] == [1, 2, 3, 4]
    assert [(c["step"], c["final"]) for c in client.jobs.checkpoints(job["id"])] == [(2, False), (4, True)]
    assert client.jobs.wait(job["id"])["status"] == "succeeded"


def test_jobs_are_listed_by_status_and_metadata(client: MocoClient, trained: Dict[str, Any]) -> None:
    listed = list(client.jobs.list(status=["succeeded"], metadata={"suite": "python"}, page_size=1))
    assert [j["id"] for j in listed] == [trained["job"]["id"]]
    assert list(client.jobs.list(metadata={"suite": "nobody"})) == []


def test_a_cancelled_job_ends_cancelled(client: MocoClient, dataset: Dict[str, Any]) -> None:
    job = client.jobs.create({"dataset_id": dataset["id"], "hyperparameters": {**TINY, "epochs": 50}})
    assert client.jobs.cancel(job["id"])["status"] in ("cancelling", "cancelled")
    assert client.jobs.wait(job["id"])["status"] == "cancelled"
    with pytest.raises(ConflictError) as finished:
        client.jobs.cancel(job["id"])
    assert finished.value.code == "job_finished"


def test_rate_limits_are_waited_out_after_retry_after(admin: MocoClient) -> None:
    """The API under test allows 5 job creations per key per 2 s window (RATE_LIMIT_EXPENSIVE_MAX)."""
    key = admin.admin.keys.create(project_name=f"burst-{uuid.uuid4().hex[:8]}")["key"]
    no_retries = MocoClient(env("MOCO_URL"), key, max_retries=0)
    # Creations naming no dataset are refused (400) after they are counted: a cheap way to spend the budget.
    with pytest.raises(RateLimitError) as limited:
        for _ in range(20):
            with pytest.raises(InvalidRequestError):
                no_retries.jobs.create({"dataset_id": "ds_missing"})
    assert limited.value.code == "rate_limited" and limited.value.retry_after >= 1
    patient = MocoClient(env("MOCO_URL"), key, max_retries=3)
    start = time.monotonic()
    for _ in range(8):
        with pytest.raises(InvalidRequestError):
            patient.jobs.create({"dataset_id": "ds_missing"})
    # The budget was spent: getting through took at least the Retry-After the server named.
    assert time.monotonic() - start >= limited.value.retry_after * 0.9


def test_admin_keys_projects_queue_and_health(admin: MocoClient) -> None:
    created = admin.admin.keys.create(project_name="python-keys", name="ci")
    assert created["key"].startswith("mk_")
    assert created["id"] in [k["id"] for k in admin.admin.keys.list(project_id=created["project_id"])]
    rotated = admin.admin.keys.rotate(created["id"], grace_period_s=60)
    assert rotated["key"] != created["key"]
    assert admin.admin.keys.revoke(rotated["id"])["revoked_at"]
    with pytest.raises(AuthenticationError):
        MocoClient(env("MOCO_URL"), rotated["key"]).jobs.get("job_missing")
    assert "python-keys" in [p["name"] for p in admin.admin.projects()]
    assert isinstance(admin.admin.queue()["workers"], list)
    assert admin.health.live() == {"status": "ok"}
    assert admin.health.ready()["status"] == "ok"
    assert "demand" in admin.health.queue_depth()
