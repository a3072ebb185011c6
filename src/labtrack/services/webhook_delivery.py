"""``WebhookDispatcher``: delivers registry events to webhooks without delaying requests.

Each (event, webhook) pair becomes a delivery row, then a worker thread POSTs it, retrying
with exponential backoff (and ``Retry-After``) on failures; status, attempts, the response
code and the last error are recorded, so a failed delivery is visible through the API.
Deliveries left pending by a stopped server are resumed when the next one starts.

Several server processes may share one store (``labtrack server --workers N``, or several
servers on one PostgreSQL database): every delivery is sent by exactly one of them. A sender
claims a delivery in the store (atomically) before each attempt; the claim is renewed at every
attempt, and one older than ``claim_timeout_seconds`` — its sender died mid-send — may be
taken over. Each dispatcher looks for such unclaimed or stale deliveries when it starts and
then every ``resume_interval_seconds``. Requests to
loopback, private or link-local addresses are refused unless the host is allow-listed, and
redirects are never followed, so a webhook cannot be used to reach internal services.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

import requests

from labtrack import webhooks
from labtrack.entities import DeliveryStatus, Webhook, WebhookEvent
from labtrack.errors import InvalidParameterValue

log = logging.getLogger("labtrack.webhooks")


class WebhookBlocked(Exception):
    """The URL's host resolves to an address the allowlist does not cover."""


def now_ms() -> int:
    return int(time.time() * 1000)


class WebhookDispatcher:
    def __init__(self, store, allowed_hosts: tuple[str, ...] = (), max_attempts: int = 4,
                 backoff_seconds: float = 0.5, timeout_seconds: float = 10.0, workers: int = 4,
                 claim_timeout_seconds: float = 300.0):
        if claim_timeout_seconds <= 2 * timeout_seconds:
            raise ValueError("claim_timeout_seconds must exceed twice timeout_seconds: an "
                             "attempt in progress must never look abandoned.")
        self.store = store
        self.allowed_hosts = allowed_hosts
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.timeout_seconds = timeout_seconds
        self.claim_timeout_seconds = claim_timeout_seconds
        # Who claims deliveries: unique per dispatcher, readable in the database.
        self.sender_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stopped = threading.Event()
        self._resumer: threading.Thread | None = None
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="labtrack-webhook")
        self._session = requests.Session()
        self._in_flight = 0
        self._idle = threading.Condition()

    # -- configuration checks ----------------------------------------------------------------

    @staticmethod
    def check_url(url: str) -> str:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InvalidParameterValue(
                f"Invalid webhook URL '{url}': use an http:// or https:// URL with a host."
            )
        return url

    def _allow_listed(self, host: str, address: ipaddress._BaseAddress) -> bool:
        for entry in self.allowed_hosts:
            if entry == host:
                return True
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        return False

    def check_destination(self, url: str) -> None:
        """Refuse internal destinations that are not allow-listed (checked at each send, so
        a DNS change cannot sneak one in)."""
        host = urlparse(url).hostname or ""
        try:
            infos = socket.getaddrinfo(host, None)
        except socket.gaierror as error:
            raise WebhookBlocked(f"cannot resolve '{host}': {error}") from None
        for info in infos:
            address = ipaddress.ip_address(info[4][0].split("%")[0])
            internal = (address.is_private or address.is_loopback or address.is_link_local
                        or address.is_reserved or address.is_multicast
                        or address.is_unspecified)
            if internal and not self._allow_listed(host, address):
                raise WebhookBlocked(
                    f"'{host}' resolves to the internal address {address}; add it to the "
                    "webhook allowlist (LabTrack.webhook_allowed_hosts) to allow it"
                )

    # -- sending -----------------------------------------------------------------------------

    def emit(self, event: WebhookEvent, model_name: str, payload: dict[str, Any]) -> None:
        """Queue ``event`` for every active webhook of the model and the registry-wide ones."""
        for webhook in self.store.webhooks_for_event(model_name, event):
            delivery_id = uuid.uuid4().hex
            body = json.dumps({"event": str(event), "webhook_id": webhook.id,
                               "event_timestamp": now_ms(), "model_name": model_name,
                               **payload})
            # Created claimed: another process resuming deliveries cannot take it meanwhile.
            self.store.create_delivery(delivery_id, webhook.id, event, body, now_ms(),
                                       claimed_by=self.sender_id)
            self._submit(webhook.id, delivery_id, event, body)

    def _stale_before_ms(self) -> int:
        return now_ms() - int(self.claim_timeout_seconds * 1000)

    def _claim(self, delivery_id: str) -> bool:
        return self.store.claim_delivery(delivery_id, self.sender_id, now_ms(),
                                         self._stale_before_ms())

    def resume_pending(self) -> int:
        """Send the pending deliveries no live sender holds (left by a stopped or dead
        server); returns how many this dispatcher claimed."""
        claimed = 0
        for delivery, body in self.store.pending_deliveries(self._stale_before_ms()):
            if self._claim(delivery.id):
                claimed += 1
                self._submit(delivery.webhook_id, delivery.id, delivery.event, body,
                             delivery.attempts)
        return claimed

    def start_resuming(self, interval_seconds: float = 60.0) -> None:
        """``resume_pending`` now and then every ``interval_seconds`` until ``close``, so the
        deliveries of a process that died while others run are taken over."""
        def loop() -> None:
            while True:
                try:
                    self.resume_pending()
                except Exception:  # a store hiccup: try again at the next round
                    log.exception("resuming pending webhook deliveries failed")
                if self._stopped.wait(interval_seconds):
                    return

        self._resumer = threading.Thread(target=loop, name="labtrack-webhook-resume",
                                         daemon=True)
        self._resumer.start()

    def _submit(self, webhook_id: str, delivery_id: str, event: WebhookEvent, body: str,
                attempts_done: int = 0) -> None:
        with self._idle:
            self._in_flight += 1
        self._executor.submit(self._deliver, webhook_id, delivery_id, event, body,
                              attempts_done)

    def _deliver(self, webhook_id, delivery_id, event, body, attempts_done) -> None:
        try:
            attempt = attempts_done
            while attempt < self.max_attempts:
                attempt += 1
                # Renewed before every attempt: a claim that went stale while the delivery
                # waited (in the queue or between attempts) may have passed to another sender.
                if not self._claim(delivery_id):
                    return
                webhook = self.store.get_webhook(webhook_id)
                if webhook is None:
                    return  # deleted meanwhile: its deliveries went with it
                status, error, retry_after = self._post(webhook, delivery_id, event, body)
                delivered = status is not None and 200 <= status < 300
                final = delivered or attempt >= self.max_attempts or retry_after is None
                self.store.update_delivery(
                    delivery_id,
                    DeliveryStatus.DELIVERED if delivered else (
                        DeliveryStatus.FAILED if final else DeliveryStatus.PENDING),
                    attempt, now_ms(), status, error,
                )
                if final:
                    if not delivered:
                        log.warning("webhook %s: %s not delivered after %d attempt(s): %s",
                                    webhook_id, event, attempt, error)
                    return
                # Retry-After is honoured up to half the claim timeout, so the claim (renewed
                # before the next attempt) never looks abandoned while this sender waits.
                time.sleep(min(max(retry_after, self.backoff_seconds * 2 ** (attempt - 1)),
                               self.claim_timeout_seconds / 2 - self.timeout_seconds))
        except Exception:  # never let a worker die silently
            log.exception("webhook %s: delivery %s crashed", webhook_id, delivery_id)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _post(self, webhook: Webhook, delivery_id: str, event: WebhookEvent,
              body: str) -> tuple[int | None, str | None, float | None]:
        """One attempt: (status, error, seconds to wait before retrying or None to stop)."""
        try:
            self.check_destination(webhook.url)
        except WebhookBlocked as blocked:
            return None, f"blocked: {blocked}", None
        timestamp = int(time.time())
        data = body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "labtrack-webhooks",
            webhooks.DELIVERY_ID_HEADER: delivery_id,
            webhooks.TIMESTAMP_HEADER: str(timestamp),
            webhooks.EVENT_HEADER: str(event),
        }
        secret = self.store.get_webhook_secret(webhook.id)
        if secret:
            headers[webhooks.SIGNATURE_HEADER] = webhooks.signature(
                secret, delivery_id, timestamp, data)
        try:
            response = self._session.post(
                webhook.url, data=data, headers=headers, timeout=self.timeout_seconds,
                allow_redirects=False, verify=webhook.enable_ssl_verification,
            )
        except requests.RequestException as error:
            return None, f"{type(error).__name__}: {error}"[:500], 0.0
        if 200 <= response.status_code < 300:
            return response.status_code, None, None
        retryable = response.status_code in (408, 429) or response.status_code >= 500
        retry_after = response.headers.get("Retry-After", "")
        wait = float(retry_after) if retry_after.isdigit() else 0.0
        return (response.status_code, f"HTTP {response.status_code}: "
                f"{response.text[:300]}", wait if retryable else None)

    def send_test(self, webhook: Webhook, event: WebhookEvent) -> tuple[int | None, str]:
        """One synchronous attempt with a test payload: (status code, body or error)."""
        delivery_id = uuid.uuid4().hex
        body = json.dumps({"event": str(event), "webhook_id": webhook.id,
                           "event_timestamp": now_ms(), "test": True,
                           "text": "This is a test delivery from labtrack."})
        self.store.create_delivery(delivery_id, webhook.id, event, body, now_ms(),
                                   claimed_by=self.sender_id)
        status, error, _ = self._post(webhook, delivery_id, event, body)
        delivered = status is not None and 200 <= status < 300
        self.store.update_delivery(
            delivery_id, DeliveryStatus.DELIVERED if delivered else DeliveryStatus.FAILED, 1,
            now_ms(), status, error)
        return status, error or "delivered"

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until no delivery is in flight (for tests and orderly shutdown)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self) -> None:
        self._stopped.set()
        if self._resumer is not None:
            self._resumer.join(timeout=self.timeout_seconds)
        self._executor.shutdown(wait=False, cancel_futures=False)
        self._session.close()
