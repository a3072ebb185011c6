"""``labtrack server``: the command that runs the standalone REST server."""

from __future__ import annotations

import argparse


def _server(args: argparse.Namespace) -> int:
    from labtrack import config
    from labtrack.entities import ModelStage, PermissionLevel
    from labtrack.server.standalone import serve
    from labtrack.services.permissions import RegistrySettings

    if args.workers is None:
        args.workers = _workers_default()
    default = args.default_permission
    registry = RegistrySettings(
        default_permission=None if default == "None" else PermissionLevel.parse(default),
        require_distinct_approver=frozenset(
            ModelStage.parse(s) for s in args.require_distinct_approver or ["Production"]),
        admins=frozenset(args.admin or ()),
        webhook_allowed_hosts=tuple(args.webhook_allowed_host
                                    or config.webhook_allowed_hosts()),
    )
    return serve(
        host=args.host,
        port=args.port,
        backend_store_uri=args.backend_store_uri,
        artifacts_destination=args.artifacts_destination,
        token=args.token,
        user=args.user,
        threads=args.threads,
        token_file=args.token_file,
        registry=registry,
        s3_endpoint_url=args.s3_endpoint_url,
        workers=args.workers,
    )


def _workers_default() -> int:
    import os

    value = os.environ.get("LABTRACK_SERVER_WORKERS", "1")
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"LABTRACK_SERVER_WORKERS must be a whole number, not {value!r}.")\
            from None


def add_commands(commands) -> None:
    """Add ``labtrack server``."""
    server = commands.add_parser(
        "server",
        help="serve the tracking REST API (MLflow-compatible) without JupyterLab",
        description="Serve labtrack's REST API — MLflow's wire protocol — for teams and "
        "non-Python clients. Every request needs a token: one of the store's users' "
        "(labtrack users / labtrack tokens) or one given here.",
    )
    server.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default: 127.0.0.1)")
    server.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    server.add_argument("--backend-store-uri", default=None,
                        help="the store: a folder or .db path or sqlite:/// URI, or "
                        "postgresql://user:password@host:port/database for a central server "
                        "(several server processes may share it; needs labtrack[postgres]) "
                        "(default: $LABTRACK_TRACKING_URI or the embedded store)")
    server.add_argument("--artifacts-destination", default=None,
                        help="folder or object-store URI (s3://bucket/prefix, gs://…, "
                        "abfss://…, wasbs://…) for artifacts of new experiments (default: "
                        "the store's recorded artifact root)")
    server.add_argument("--s3-endpoint-url", default=None,
                        help="an S3-compatible endpoint (MinIO, Ceph, …) for s3:// artifacts "
                        "(default: $MLFLOW_S3_ENDPOINT_URL, else AWS)")
    server.add_argument("--token", default=None,
                        help="an API token clients may send, besides the store's (labtrack "
                        "tokens create); default: $LABTRACK_SERVER_TOKEN, else a random token "
                        "printed at start when the store has no tokens")
    server.add_argument("--user", default=None,
                        help="user name requests made with the token act as (default: yours)")
    server.add_argument("--token-file", default=None,
                        help="several users: a file of '<user>:<token>' lines (instead of "
                        "--token)")
    server.add_argument("--threads", type=int, default=8,
                        help="threads running store calls, per worker (default: 8)")
    server.add_argument("--workers", type=int, default=None,
                        help="server processes sharing the port, the store and the artifact "
                        "store; a worker that dies is restarted, SIGTERM/SIGINT stops them all "
                        "(default: $LABTRACK_SERVER_WORKERS, else 1). Several workers suit "
                        "PostgreSQL best; on SQLite they share one writer at a time")
    server.add_argument("--admin", action="append", default=None, metavar="USER",
                        help="a registry admin (repeatable; default: the single --token user)")
    server.add_argument("--default-permission", default="CAN_READ",
                        help="registry permission of users a model's access list does not "
                        "name: CAN_READ (default), CAN_EDIT, … or None")
    server.add_argument("--require-distinct-approver", action="append",
                        default=None, metavar="STAGE",
                        help="stages whose requests the requester may not approve "
                        "(repeatable; default: Production)")
    server.add_argument("--webhook-allowed-host", action="append", default=None,
                        metavar="HOST",
                        help="a host, IP or CIDR range webhooks may call although internal "
                        "(repeatable; default: $LABTRACK_WEBHOOK_ALLOWED_HOSTS)")
    server.set_defaults(handler=_server)
