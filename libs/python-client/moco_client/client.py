"""MocoClient: the MoCo training service's REST API (and gRPC Embed), one method per operation.

Answers are the API's JSON as dicts (fields as in the OpenAPI document at /docs/json, snake_case).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import uuid
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

from .embed_grpc import Embeddings, GrpcEmbedder
from .errors import MocoError
from .http import Http, segment
from .retry import RetryPolicy
from .sse import JobEvent, StreamItem, job_stream

JSON = Dict[str, Any]
Progress = Callable[[int, Optional[int]], None]
# Upload chunk size: progress is reported per chunk.
CHUNK_BYTES = 1 << 20


def _download(http: Http, path: str, to: Union[str, "os.PathLike[str]"], query: Optional[Dict[str, Any]] = None) -> JSON:
    """Streams a download route (Content-Length and x-checksum-sha256) to the file ``to``: written
    beside it first and renamed into place only once whole and matching the checksum."""
    partial = f"{os.fspath(to)}.partial-{os.getpid()}"
    digest = hashlib.sha256()
    size = 0
    try:
        with http.open(path, query=query, headers={"Accept": "*/*"}, timeout_s=None) as res, open(partial, "wb") as out:
            expected_size, expected_sha = int(res.headers["Content-Length"]), res.headers.get("x-checksum-sha256", "")
            while chunk := res.read(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if size != expected_size or digest.hexdigest() != expected_sha:
            raise MocoError(f"{path} arrived damaged: {size} bytes, sha256 {digest.hexdigest()}; the server sent {expected_size} bytes, sha256 {expected_sha}")
        os.replace(partial, to)
        return {"path": os.fspath(to), "bytes": size, "sha256": expected_sha}
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _paginate(http: Http, path: str, query: Dict[str, Any]) -> Iterator[JSON]:
    """Items of a list endpoint, fetching pages as the iteration needs them."""
    after: Optional[str] = None
    while True:
        page = http.json(path, query={**query, "after": after})
        yield from page["data"]
        if not page["has_more"] or not page["next_cursor"]:
            return
        after = page["next_cursor"]


class Datasets:
    def __init__(self, http: Http) -> None:
        self._http = http

    def upload(
        self,
        source: Union[str, "os.PathLike[str]", bytes],
        name: Optional[str] = None,
        filename: Optional[str] = None,
        on_progress: Optional[Progress] = None,
    ) -> JSON:
        """Uploads a dataset file (tar, tar.gz, zip, idx) from a path or bytes, streamed; the API validates
        it before answering (422 ``invalid_dataset`` names the bad entry). ``on_progress(sent, total)``
        is called per chunk. Retried after network errors and 5xx, re-reading the file each time."""
        is_path = not isinstance(source, (bytes, bytearray))
        total = os.path.getsize(source) if is_path else len(source)
        if filename is None and is_path:
            filename = re.sub(r"^[._-]+", "", re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(os.fspath(source)))) or None

        def chunks() -> Iterable[bytes]:
            sent = 0
            if on_progress:
                on_progress(0, total)
            with open(source, "rb") if is_path else _BytesReader(source) as f:
                while True:
                    chunk = f.read(CHUNK_BYTES)
                    if not chunk:
                        return
                    sent += len(chunk)
                    yield chunk
                    if on_progress:
                        on_progress(sent, total)

        return self._http.json(
            "/v1/datasets",
            method="POST",
            query={"name": name, "filename": filename},
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(total)},
            body=chunks,
            retry=True,
            timeout_s=None,
        )

    def register(self, source: str, name: Optional[str] = None) -> JSON:
        """Registers an object already in the service's S3 (``s3://bucket/key``), validated in place."""
        return self._http.json("/v1/datasets", method="POST", json_body=_compact(source=source, name=name), retry=False, timeout_s=None)

    def get(self, dataset_id: str) -> JSON:
        return self._http.json(f"/v1/datasets/{segment(dataset_id)}")

    def download(self, dataset_id: str, to: Union[str, "os.PathLike[str]"]) -> JSON:
        """An uploaded dataset's file, written to ``to`` (checksum verified): {path, bytes, sha256}."""
        return _download(self._http, f"/v1/datasets/{segment(dataset_id)}/download", to)

    def list(self, page_size: Optional[int] = None) -> Iterator[JSON]:
        return _paginate(self._http, "/v1/datasets", {"limit": page_size})

    def samples(self, dataset_id: str, n: Optional[int] = None) -> JSON:
        """PNG thumbnails (base64) of ``n`` of its images, classes in turn: {dataset_id, data: [{label, class_name, png}]}."""
        return self._http.json(f"/v1/datasets/{segment(dataset_id)}/samples", query={"n": n})


class Jobs:
    def __init__(self, http: Http) -> None:
        self._http = http

    def create(self, request: JSON, idempotency_key: Optional[str] = None) -> JSON:
        """Queues a training job (``{"dataset_id", "eval_dataset_id", "hyperparameters", "metadata",
        "early_stopping": {"metric", "patience", "min_delta"}, "collapse": {"min_feature_std", "steps"}}``).
        With a labelled eval dataset the job's ``best_checkpoint_id`` names its best evaluation's
        checkpoint, which ``models.promote`` accepts. A random Idempotency-Key is sent unless given,
        so that retries never create two. The answer is the job with ``warnings``:
        ``[{"field", "message"}]`` for settings known to train badly."""
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return self._http.json("/v1/jobs", method="POST", json_body=request, headers=headers, retry=True)

    def preview(self, request: JSON) -> JSON:
        """What ``create`` would make of ``request`` (the resolved hyperparameters, ``total_steps``,
        the project), without creating it; a bad request raises the same ApiError."""
        return self._http.json("/v1/jobs/preview", method="POST", json_body=request, retry=True)

    def get(self, job_id: str) -> JSON:
        return self._http.json(f"/v1/jobs/{segment(job_id)}")

    def list(self, status: Optional[Sequence[str]] = None, metadata: Optional[Dict[str, str]] = None, page_size: Optional[int] = None) -> Iterator[JSON]:
        """Newest first; ``status`` any of, ``metadata`` every key equal (``?metadata.<key>=``)."""
        query: Dict[str, Any] = {"limit": page_size, "status": ",".join(status) if status else None}
        query.update({f"metadata.{k}": v for k, v in (metadata or {}).items()})
        return _paginate(self._http, "/v1/jobs", query)

    def cancel(self, job_id: str) -> JSON:
        """Cancelling is idempotent, so it is retried like a read."""
        return self._http.json(f"/v1/jobs/{segment(job_id)}/cancel", method="POST", retry=True)

    def events(self, job_id: str, after: Optional[int] = None, metrics_after_step: Optional[int] = None) -> Iterator[StreamItem]:
        """Live events (``JobEvent``) and new metric values (``MetricPoints``) until the job ends
        (Server-Sent Events, resumed after drops)."""
        return job_stream(self._http, job_id, after, metrics_after_step)

    def event_page(self, job_id: str, after: Optional[int] = None, limit: Optional[int] = None) -> JSON:
        return self._http.json(f"/v1/jobs/{segment(job_id)}/events", query={"after": after, "limit": limit})

    def metrics(
        self,
        job_id: str,
        names: Optional[Sequence[str]] = None,
        from_step: Optional[int] = None,
        to_step: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> JSON:
        query = {"name": ",".join(names) if names else None, "from_step": from_step, "to_step": to_step, "limit": limit}
        return self._http.json(f"/v1/jobs/{segment(job_id)}/metrics", query=query)

    def checkpoints(self, job_id: str) -> Iterator[JSON]:
        return _paginate(self._http, f"/v1/jobs/{segment(job_id)}/checkpoints", {})

    def wait(self, job_id: str, on_item: Optional[Callable[[StreamItem], None]] = None) -> JSON:
        """Follows the live stream until the job is succeeded, failed or cancelled; returns the job."""
        job = self.get(job_id)
        if job["status"] not in ("succeeded", "failed", "cancelled"):
            for item in self.events(job_id):
                if on_item:
                    on_item(item)
                if isinstance(item, JobEvent) and item.terminal:
                    break
            job = self.get(job_id)
        return job


class Checkpoints:
    def __init__(self, http: Http) -> None:
        self._http = http

    def export(self, checkpoint_id: str, to: Union[str, "os.PathLike[str]"], format: str = "onnx", output: Optional[str] = None) -> JSON:
        """A checkpoint as ``onnx`` (the frozen encoder; ``output="head"`` adds the head), ``pytorch``
        (facebookresearch/moco's layout) or ``mocotens`` (the training state), written to ``to``
        (checksum verified): {path, bytes, sha256}."""
        query = {"format": format, "output": output}
        return _download(self._http, f"/v1/checkpoints/{segment(checkpoint_id)}/export", to, {k: v for k, v in query.items() if v is not None})


class Models:
    def __init__(self, http: Http, grpc: Optional[GrpcEmbedder]) -> None:
        self._http = http
        self._grpc = grpc

    def promote(self, checkpoint_id: str, alias: str, wait_until_served: bool = False, timeout_s: float = 60.0) -> JSON:
        """Points ``alias`` at a checkpoint and answers the model (its ``id`` pins it: ``model_id=``).
        Embedders switch to it without a restart, once it is loaded; with ``wait_until_served`` (needs
        ``grpc_address``) this returns only once the embedder answers the alias with it."""
        if wait_until_served and self._grpc is None:
            raise MocoError("models.promote with wait_until_served needs grpc_address (host:port of an embedder)")
        model = self._http.json("/v1/models", method="POST", json_body={"checkpoint_id": checkpoint_id, "alias": alias}, retry=True)
        if wait_until_served:
            self._grpc.wait_until_served(alias, model, timeout_s)
        return model

    def list(self) -> List[JSON]:
        return self._http.json("/v1/models")["data"]


class EmbeddingsApi:
    def __init__(self, http: Http, grpc: Optional[GrpcEmbedder]) -> None:
        self._http = http
        self._grpc = grpc

    def embed(self, images: Sequence[bytes], model: Optional[str] = None, model_id: Optional[str] = None, **options: Any) -> Embeddings:
        """Embeds encoded images (PNG/JPEG) over gRPC (needs ``grpc_address``); ``model`` an alias
        (default production) or ``model_id`` an exact model. Options: output ("backbone" | "head"),
        normalize (default True), batch_size (64), timeout_s (60)."""
        if self._grpc is None:
            raise MocoError("embeddings.embed needs grpc_address (host:port of an embedder)")
        return self._grpc.embed(images, model=model, model_id=model_id, **options)

    def create(
        self,
        images: Sequence[bytes],
        model: Optional[str] = None,
        model_id: Optional[str] = None,
        output: Optional[str] = None,
        normalize: Optional[bool] = None,
    ) -> JSON:
        """The REST mirror (POST /v1/embeddings): for callers without gRPC."""
        body = _compact(images=[base64.b64encode(i).decode() for i in images], model=model, model_id=model_id, output=output, normalize=normalize)
        return self._http.json("/v1/embeddings", method="POST", json_body=body, retry=True)


class ApiKeys:
    def __init__(self, http: Http) -> None:
        self._http = http

    def create(self, project_name: Optional[str] = None, project_id: Optional[str] = None, name: Optional[str] = None, role: Optional[str] = None) -> JSON:
        """The answer holds the secret, the only time it is shown. Not retried (but on 429): a retry would make a second key."""
        body = _compact(project_name=project_name, project_id=project_id, name=name, role=role)
        return self._http.json("/v1/admin/keys", method="POST", json_body=body)

    def list(self, project_id: Optional[str] = None, page_size: Optional[int] = None) -> Iterator[JSON]:
        return _paginate(self._http, "/v1/admin/keys", {"project_id": project_id, "limit": page_size})

    def revoke(self, key_id: str) -> JSON:
        return self._http.json(f"/v1/admin/keys/{segment(key_id)}/revoke", method="POST", retry=True)

    def rotate(self, key_id: str, grace_period_s: int = 0) -> JSON:
        """Not retried (but on 429): a retry after a lost answer would find the old key revoked."""
        return self._http.json(f"/v1/admin/keys/{segment(key_id)}/rotate", method="POST", json_body={"grace_period_s": grace_period_s})


class Admin:
    """Operator routes: they need an admin key (others get ``PermissionDeniedError``)."""

    def __init__(self, http: Http) -> None:
        self._http = http
        self.keys = ApiKeys(http)

    def queue(self) -> JSON:
        return self._http.json("/v1/admin/queue")

    def projects(self) -> List[JSON]:
        return self._http.json("/v1/admin/projects")["data"]


class Health:
    """Unauthenticated probes."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def live(self) -> JSON:
        return self._http.json("/healthz")

    def ready(self) -> JSON:
        """``{"status", "checks"}``; raises ``ServerError`` (503) when a dependency is down."""
        return self._http.json("/readyz")

    def queue_depth(self) -> JSON:
        return self._http.json("/queue-depth")


class MocoClient:
    """``MocoClient("http://127.0.0.1:8080", api_key)``; ``grpc_address`` ("host:port") enables
    ``embeddings.embed`` over gRPC (needs grpcio). Retries: ``max_retries`` after network errors, 5xx
    and 429 (waiting at least its ``Retry-After``), for requests that are safe to repeat."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        grpc_address: Optional[str] = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        retry_delay_s: float = 0.25,
    ) -> None:
        retry = RetryPolicy(max_retries, retry_delay_s)
        http = Http(base_url, api_key, timeout_s, retry)
        self._grpc = GrpcEmbedder(grpc_address, api_key, retry) if grpc_address else None
        self.datasets = Datasets(http)
        self.jobs = Jobs(http)
        self.checkpoints = Checkpoints(http)
        self.models = Models(http, self._grpc)
        self.embeddings = EmbeddingsApi(http, self._grpc)
        self.admin = Admin(http)
        self.health = Health(http)

    def close(self) -> None:
        """Closes the gRPC channel, if one was opened."""
        if self._grpc is not None:
            self._grpc.close()

    def __enter__(self) -> "MocoClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _BytesReader:
    """Bytes read in chunks like a file, so that uploads from bytes and from paths share one loop."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, size: int) -> bytes:
        chunk = bytes(self._data[self._pos : self._pos + size])
        self._pos += len(chunk)
        return chunk

    def __enter__(self) -> "_BytesReader":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _compact(**fields: Any) -> JSON:
    return {k: v for k, v in fields.items() if v is not None}
