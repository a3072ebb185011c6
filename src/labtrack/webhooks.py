"""Signing and verifying labtrack's registry webhook deliveries.

Each delivery is a JSON POST with the headers

- ``X-Labtrack-Delivery-Id``: a unique id (a receiver can drop repeats),
- ``X-Labtrack-Timestamp``: Unix seconds when it was signed,
- ``X-Labtrack-Event``: the event name,
- ``X-Labtrack-Signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`` keyed with
  the webhook's secret (present only when the webhook has one).

A receiver checks it with ``verify_signature(secret, headers, body)``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "X-Labtrack-Signature"
DELIVERY_ID_HEADER = "X-Labtrack-Delivery-Id"
TIMESTAMP_HEADER = "X-Labtrack-Timestamp"
EVENT_HEADER = "X-Labtrack-Event"


def signature(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    message = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes,
                     tolerance_seconds: int = 300) -> bool:
    """Whether a delivery is authentic and fresh (signed within ``tolerance_seconds``)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        delivery_id = lowered[DELIVERY_ID_HEADER.lower()]
        timestamp = int(lowered[TIMESTAMP_HEADER.lower()])
        presented = lowered[SIGNATURE_HEADER.lower()]
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, delivery_id, timestamp, body)
    return hmac.compare_digest(expected.encode(), presented.encode())
