"""A webhook-driven CI gate for the labtrack model registry.

It listens for registry webhooks; when someone requests a transition
(``TRANSITION_REQUEST_CREATED``), it checks the version's model — the run that produced it must
have logged ``--metric`` at or above ``--minimum`` — and approves the request (archiving what
was in the target stage) or rejects it, with a comment saying why, through the REST API.

Run it next to a labtrack server, as a user who may approve (e.g. a production manager):

    python examples/ci_gate.py --listen 127.0.0.1:8765 \\
        --tracking-uri http://127.0.0.1:5000 --token "$GATE_TOKEN" \\
        --secret "$WEBHOOK_SECRET" --metric accuracy --minimum 0.9

and register it as a webhook (``TrackingClient.create_webhook(["TRANSITION_REQUEST_CREATED"],
"http://127.0.0.1:8765/hook", model_name=..., secret=...)``). Loopback receivers must be in the
server's webhook allowlist.

A delivery can arrive more than once (labtrack retries when an answer is lost, and two webhooks
may point here); the gate answers repeats with 200 and acts once: it skips delivery ids it has
handled, and a request someone (or an earlier copy of the event) already closed counts as
handled.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import threading
from collections import OrderedDict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import labtrack
from labtrack import webhooks
from labtrack.errors import LabtrackError

log = logging.getLogger("ci_gate")

# A closed request (decided by someone else, or by an earlier copy of the delivery) or a
# deleted version: nothing is left to decide, so the delivery counts as handled.
SETTLED = ("RESOURCE_CONFLICT", "RESOURCE_DOES_NOT_EXIST")
REMEMBERED_DELIVERIES = 10_000


@dataclass
class Verdict:
    approve: bool
    reason: str


class Gate:
    def __init__(self, client: labtrack.TrackingClient, metric: str, minimum: float):
        self.client = client
        self.metric = metric
        self.minimum = minimum
        self.handled: list[tuple[str, str, str, Verdict]] = []
        self.lock = threading.Lock()
        self._deliveries: OrderedDict[str, None] = OrderedDict()

    def seen(self, delivery_id: str | None) -> bool:
        """Whether a delivery with this id was handled already."""
        with self.lock:
            return bool(delivery_id) and delivery_id in self._deliveries

    def remember(self, delivery_id: str | None) -> None:
        """Record a handled delivery (the newest ``REMEMBERED_DELIVERIES`` are kept)."""
        if not delivery_id:
            return
        with self.lock:
            self._deliveries[delivery_id] = None
            while len(self._deliveries) > REMEMBERED_DELIVERIES:
                self._deliveries.popitem(last=False)

    def source_run(self, model_version) -> str | None:
        """The run that produced the version: its own run id, else (a version registered
        from ``models:/<model_id>``) the source run of its logged model."""
        if model_version.run_id:
            return model_version.run_id
        if model_version.model_id:
            return self.client.service.get_logged_model(model_version.model_id).source_run_id
        return None

    def check(self, name: str, version: str) -> Verdict:
        run_id = self.source_run(self.client.get_model_version(name, version))
        if not run_id:
            return Verdict(False, "the version has no source run, so it cannot be checked")
        metrics = self.client.get_run(run_id).data.metrics
        value = metrics.get(self.metric)
        if value is None or math.isnan(value):
            return Verdict(False, f"its run logged no '{self.metric}'")
        if value < self.minimum:
            return Verdict(False, f"{self.metric} = {value:.4g} is below the required "
                                  f"{self.minimum:.4g}")
        return Verdict(True, f"{self.metric} = {value:.4g} meets the required "
                             f"{self.minimum:.4g}")

    def handle(self, event: dict) -> None:
        if event.get("event") != "TRANSITION_REQUEST_CREATED":
            return
        name, version, stage = event["model_name"], event["version"], event["to_stage"]
        verdict = self.check(name, version)
        comment = f"CI gate: {verdict.reason}."
        request_id = event.get("request_id")
        try:
            if verdict.approve:
                self.client.approve_transition_request(
                    name, version, stage, archive_existing_versions=stage in (
                        "Staging", "Production"), comment=comment, request_id=request_id)
            else:
                self.client.reject_transition_request(name, version, stage, comment=comment,
                                                      request_id=request_id)
        except LabtrackError as error:
            if error.error_code not in SETTLED:
                raise
            log.info("%s v%s -> %s: already settled (%s)", name, version, stage,
                     error.message)
            return
        log.info("%s v%s -> %s: %s (%s)", name, version, stage,
                 "approved" if verdict.approve else "rejected", verdict.reason)
        with self.lock:
            self.handled.append((name, version, stage, verdict))


def make_server(gate: Gate, host: str, port: int, secret: str | None) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if secret and not webhooks.verify_signature(secret, dict(self.headers), body):
                self._answer(401, "invalid or missing signature")
                return
            try:
                event = json.loads(body)
            except ValueError:
                self._answer(400, "the body is not JSON")
                return
            delivery_id = self.headers.get(webhooks.DELIVERY_ID_HEADER)
            if gate.seen(delivery_id):
                self._answer(200, "already handled")
                return
            try:
                gate.handle(event)
            except Exception as error:  # answer 500 so labtrack retries, and say why
                log.exception("could not handle the event")
                self._answer(500, str(error))
                return
            gate.remember(delivery_id)
            self._answer(200, "ok")

        def _answer(self, status: int, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8765", help="host:port to listen on")
    parser.add_argument("--tracking-uri", required=True, help="the labtrack server URL")
    parser.add_argument("--token", default=None, help="the gate's API token")
    parser.add_argument("--secret", default=None, help="the webhook's signing secret")
    parser.add_argument("--metric", default="accuracy", help="metric the run must have logged")
    parser.add_argument("--minimum", type=float, default=0.9, help="lowest acceptable value")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.token:
        os.environ["LABTRACK_TRACKING_TOKEN"] = args.token
    gate = Gate(labtrack.TrackingClient(args.tracking_uri), args.metric, args.minimum)
    host, _, port = args.listen.rpartition(":")
    server = make_server(gate, host, int(port), args.secret)
    log.info("CI gate listening on http://%s:%s/hook", host, port)
    # SIGTERM (a service manager stopping the gate) ends it as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
