"""gRPC ``moco.v1.EmbeddingService/Embed`` with grpcio (the optional ``grpc`` extra).

Why a hand-written protobuf codec: the client is to need nothing but grpcio, and generated stubs
need protoc (grpc_tools), which is not installable where this is built (Debian's python3-grpc-tools
is years older than its grpcio). Embed uses two flat messages (proto/moco/v1/embedding.proto), so
they are encoded and decoded here with grpcio's generic ``unary_unary``; unknown fields are skipped,
so a newer server stays readable.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .errors import MocoError
from .retry import RetryPolicy

METHOD = "/moco.v1.EmbeddingService/Embed"
OUTPUTS = {"backbone": 1, "head": 2}
# EmbedRequest field numbers (proto/moco/v1/embedding.proto), and those of its Tensor.
_ALIAS, _MODEL_ID, _IMAGES, _TENSOR, _OUTPUT, _NORMALIZE = 1, 2, 3, 4, 5, 6
_TENSOR_SHAPE, _TENSOR_DATA = 1, 2
# EmbedResponse field numbers.
_RESPONSE_FIELDS = {1: "vectors", 2: "count", 3: "dim", 4: "model_id", 5: "alias", 6: "embedding_space_id", 7: "output", 8: "normalized", 9: "request_id"}


class EmbedError(MocoError):
    """Embed failed: ``code`` is the gRPC status name (UNAVAILABLE, NOT_FOUND, UNAUTHENTICATED, ...)."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


@dataclass
class Embeddings:
    vectors: List[List[float]]
    dim: int
    model_id: str
    alias: Optional[str]
    embedding_space_id: str


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: Union[int, bytes]) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def encode_request(images: Sequence[bytes], alias: Optional[str], model_id: Optional[str], output: str, normalize: bool) -> bytes:
    parts = [_field(_MODEL_ID, model_id.encode()) if model_id else _field(_ALIAS, (alias or "").encode())]
    parts += [_field(_IMAGES, bytes(image)) for image in images]
    parts += [_field(_OUTPUT, OUTPUTS[output]), _field(_NORMALIZE, int(normalize))]
    return b"".join(parts)


def encode_pixel_probe(alias: str, channels: int) -> bytes:
    """An EmbedRequest of one black 1x1 pixel as a raw tensor: the cheapest input a model accepts
    (its transform resizes it)."""
    shape = b"".join(_varint(n) for n in (1, 1, 1, channels))
    tensor = _field(_TENSOR_SHAPE, shape) + _field(_TENSOR_DATA, bytes(4 * channels))
    return _field(_ALIAS, alias.encode()) + _field(_TENSOR, tensor) + _field(_OUTPUT, OUTPUTS["backbone"])


def _read_varint(data: bytes, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def decode_response(data: bytes) -> Dict[str, Union[int, bytes]]:
    fields: Dict[str, Union[int, bytes]] = {}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = data[pos : pos + size], pos + size
        else:
            raise EmbedError("INTERNAL", f"unreadable EmbedResponse (wire type {wire})")
        if number in _RESPONSE_FIELDS:
            fields[_RESPONSE_FIELDS[number]] = value
    return fields


class GrpcEmbedder:
    def __init__(self, address: str, api_key: str, retry: RetryPolicy) -> None:
        try:
            import grpc
        except ImportError as err:
            raise MocoError("gRPC needs grpcio: pip install 'moco-client[grpc]' (Debian: python3-grpcio)") from err
        self._grpc = grpc
        self._channel = grpc.insecure_channel(address)
        self._embed = self._channel.unary_unary(METHOD, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        self._retry = retry

    def embed(
        self,
        images: Sequence[bytes],
        model: Optional[str] = None,
        model_id: Optional[str] = None,
        output: str = "backbone",
        normalize: bool = True,
        batch_size: int = 64,
        timeout_s: float = 60.0,
    ) -> Embeddings:
        """Vectors of encoded images, ``batch_size`` per call. Raises if the alias moved between calls,
        so that vectors of two models are never returned together."""
        responses = [
            decode_response(self._call(encode_request(images[i : i + batch_size], model, model_id, output, normalize), timeout_s))
            for i in range(0, len(images), batch_size)
        ]
        if not responses:
            return Embeddings([], 0, "", model, "")
        first = responses[0]
        moved = next((r for r in responses if r.get("embedding_space_id") != first.get("embedding_space_id")), None)
        if moved is not None:
            raise MocoError(f"the model changed during the call ({_text(first, 'model_id')} then {_text(moved, 'model_id')}): embed again, or pin model_id")
        vectors: List[List[float]] = []
        dim = int(first.get("dim", 0))
        for r in responses:
            packed = bytes(r.get("vectors", b""))
            values = struct.unpack(f"<{len(packed) // 4}f", packed)
            vectors += [list(values[j : j + dim]) for j in range(0, len(values), dim)] if dim else []
        return Embeddings(vectors, dim, _text(first, "model_id"), _text(first, "alias") or None, _text(first, "embedding_space_id"))

    def wait_until_served(self, alias: str, model: Dict[str, Any], timeout_s: float = 60.0) -> None:
        """Returns once an Embed by ``alias`` is answered by ``model`` (a promotion's answer): embedders
        move an alias only after its new model is loaded, so right after a promotion the previous
        model may still answer. Probes with one 1x1 pixel: one tiny forward pass each."""
        probe = encode_pixel_probe(alias, model["transform"]["channels"])
        until = time.monotonic() + timeout_s
        attempt = 0
        while True:
            attempt += 1
            served = _text(decode_response(self._call(probe, max(until - time.monotonic(), 1.0))), "model_id")
            if served == model["id"]:
                return
            if time.monotonic() > until:
                raise MocoError(f"the embedder still serves {served} for alias {alias}, not {model['id']}")
            time.sleep(min(0.1 * attempt, 1.0))

    def _call(self, request: bytes, timeout_s: float) -> bytes:
        attempt = 0
        while True:
            try:
                return self._embed(request, timeout=timeout_s, metadata=self._metadata)
            except self._grpc.RpcError as err:
                code = err.code()
                # UNAVAILABLE is the embedder's "not now" (starting, draining, overloaded): worth another try.
                if code != self._grpc.StatusCode.UNAVAILABLE or attempt >= self._retry.max_retries:
                    raise EmbedError(code.name, err.details() or "") from None
                attempt += 1
                time.sleep(self._retry.delay(attempt))

    def close(self) -> None:
        self._channel.close()


def _text(fields: Dict[str, Union[int, bytes]], name: str) -> str:
    value = fields.get(name, b"")
    return value.decode() if isinstance(value, bytes) else str(value)
