"""``labtrack users create|list|delete`` and ``labtrack tokens create|list|revoke``: the
accounts of a team's ``labtrack server``, kept in its store.

They act on the store directly (run them where the server's store is, as its administrator);
a running server sees the change at the next request.
"""

from __future__ import annotations

import argparse
import datetime
import sys


def _accounts(args: argparse.Namespace):
    from labtrack import config
    from labtrack.services.accounts import AccountService
    from labtrack.store import open_store

    uri = args.backend_store_uri or config.default_tracking_uri()
    return AccountService(open_store(uri))


def _when(time_ms: int) -> str:
    return datetime.datetime.fromtimestamp(time_ms / 1000, datetime.UTC).strftime(
        "%Y-%m-%d %H:%M UTC")


def _users_create(args) -> int:
    user = _accounts(args).create_user(args.name)
    print(f"Created user '{user.name}'. Give it a token: labtrack tokens create {user.name}")
    return 0


def _users_list(args) -> int:
    accounts = _accounts(args)
    tokens: dict[str, int] = {}
    for token in accounts.list_tokens():
        tokens[token.user_name] = tokens.get(token.user_name, 0) + 1
    for user in accounts.list_users():
        print(f"{user.name}\tcreated {_when(user.creation_time)}\t"
              f"{tokens.get(user.name, 0)} token(s)")
    return 0


def _users_delete(args) -> int:
    _accounts(args).delete_user(args.name)
    print(f"Deleted user '{args.name}' and revoked its tokens.")
    return 0


def _tokens_create(args) -> int:
    record, token = _accounts(args).create_token(args.user, args.description or "")
    print(token)
    print(f"Token {record.token_id} for '{record.user_name}': shown only now, keep it secret. "
          "Clients send it as MLFLOW_TRACKING_TOKEN (or LABTRACK_TRACKING_TOKEN).",
          file=sys.stderr)
    return 0


def _tokens_list(args) -> int:
    for token in _accounts(args).list_tokens(args.user):
        print(f"{token.token_id}\t{token.user_name}\tcreated {_when(token.creation_time)}\t"
              f"{token.description}")
    return 0


def _tokens_revoke(args) -> int:
    _accounts(args).revoke_token(args.token_id)
    print(f"Revoked token {args.token_id}.")
    return 0


def _store_option(parser) -> None:
    parser.add_argument("--backend-store-uri", default=None,
                        help="the server's store: a folder or .db path or sqlite:/// URI "
                        "(default: $LABTRACK_TRACKING_URI or the embedded store)")


def add_commands(commands) -> None:
    """Add ``labtrack users`` and ``labtrack tokens``."""
    users = commands.add_parser(
        "users", help="manage the users of labtrack server",
        description="The users of a team's labtrack server, kept in its store. A user's name "
        "is what 'Created by', approvals and registry permissions record.")
    actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="add a user")
    create.add_argument("name", help="the user name (no spaces or ':')")
    create.set_defaults(handler=_users_create)
    listing = actions.add_parser("list", help="list the users and how many tokens each has")
    listing.set_defaults(handler=_users_list)
    delete = actions.add_parser("delete", help="delete a user and revoke its tokens (what it "
                                "created keeps its name)")
    delete.add_argument("name")
    delete.set_defaults(handler=_users_delete)
    for action in (create, listing, delete):
        _store_option(action)

    tokens = commands.add_parser(
        "tokens", help="manage the API tokens of labtrack server's users",
        description="API tokens of the users of labtrack server. A token is shown once, at "
        "creation; the store keeps only its hash.")
    actions = tokens.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a token for a user and print it")
    create.add_argument("user", help="the user the token acts as")
    create.add_argument("--description", default=None, help="what the token is for")
    create.set_defaults(handler=_tokens_create)
    listing = actions.add_parser("list", help="list tokens (ids, never the secrets)")
    listing.add_argument("--user", default=None, help="only this user's tokens")
    listing.set_defaults(handler=_tokens_list)
    revoke = actions.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("token_id", help="the token's id (from 'labtrack tokens list'), or "
                        "the token itself")
    revoke.set_defaults(handler=_tokens_revoke)
    for action in (create, listing, revoke):
        _store_option(action)
