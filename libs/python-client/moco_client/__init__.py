"""Python client of the MoCo training service: ``from moco_client import MocoClient``."""

from .client import MocoClient
from .embed_grpc import EmbedError, Embeddings
from .errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    MocoApiError,
    MocoConnectionError,
    MocoError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnprocessableError,
)
from .sse import JobEvent, MetricPoints

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "EmbedError",
    "Embeddings",
    "InvalidRequestError",
    "JobEvent",
    "MetricPoints",
    "MocoApiError",
    "MocoClient",
    "MocoConnectionError",
    "MocoError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "UnprocessableError",
]
