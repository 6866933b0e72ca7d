"""What needs no service: Retry-After parsing, the SSE parser, the protobuf codec."""

from __future__ import annotations

import email.utils
import io
import struct

import pytest

from moco_client.embed_grpc import decode_response, encode_pixel_probe, encode_request
from moco_client.retry import MAX_DELAY_S, RetryPolicy, parse_retry_after
from moco_client.sse import parse


def test_retry_after_as_seconds_or_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    now = 1_800_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 12, usegmt=True), now=now) == pytest.approx(12, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


def test_backoff_grows_and_never_undercuts_retry_after() -> None:
    policy = RetryPolicy(max_retries=5, base_delay_s=0.1)
    assert all(0.05 <= policy.delay(1) <= 0.15 for _ in range(50))
    assert all(0.2 <= policy.delay(3) <= 0.6 for _ in range(50))
    assert policy.delay(1, retry_after=4) == 4
    assert policy.delay(20) == MAX_DELAY_S


def test_sse_parser_reads_events_comments_and_multiline_data() -> None:
    body = io.BytesIO(b": heartbeat\n\nid: 3\nevent: started\ndata: {\"a\":\ndata: 1}\n\nevent: metrics\r\ndata: {}\r\n\n")
    messages = list(parse(body))
    assert [(m.event, m.data, m.id) for m in messages] == [("started", '{"a":\n1}', "3"), ("metrics", "{}", "3")]


def test_embed_request_encoding_is_protobuf() -> None:
    # alias "p" (field 1), two images (field 3), OUTPUT_HEAD (field 5 = 2), normalize (field 6 = 1)
    assert encode_request([b"ab", b""], "p", None, "head", True) == b"\x0a\x01p\x1a\x02ab\x1a\x00\x28\x02\x30\x01"
    assert encode_request([b"x" * 200], None, "ck_1", "backbone", False)[:6] == b"\x12\x04ck_1"
    assert encode_request([b"x" * 200], None, "ck_1", "backbone", False)[6:9] == b"\x1a\xc8\x01"  # varint 200


def test_embed_response_decoding_skips_unknown_fields() -> None:
    vectors = struct.pack("<2f", 0.5, -1.0)
    data = b"\x0a\x08" + vectors + b"\x10\x01\x18\x02\x22\x02m1" + b"\x65\x00\x00\x00\x00" + b"\x40\x01"
    assert decode_response(data) == {"vectors": vectors, "count": 1, "dim": 2, "model_id": b"m1", "normalized": 1}



def test_the_serving_probe_is_one_pixel_tensor() -> None:
    # alias (1), tensor (4) {shape (1) packed [1, 1, 1, 3], data (2) 12 zero bytes}, OUTPUT_BACKBONE (5 = 1)
    tensor = b"\x0a\x04\x01\x01\x01\x03" + b"\x12\x0c" + bytes(12)
    assert encode_pixel_probe("prod", 3) == b"\x0a\x04prod" + b"\x22" + bytes([len(tensor)]) + tensor + b"\x28\x01"
