"""Users and API tokens of a team's ``labtrack server``: who may call it, and as whom.

A token reads ``lt_<token id>_<secret>``. The id is public (``labtrack tokens list`` shows
it, ``labtrack tokens revoke`` takes it); the secret is printed once, at creation, and only
its SHA-256 is stored — secrets are 256 random bits, so a plain hash cannot be reversed and
needs no salt. The user a token belongs to is the identity every request made with it acts
as: "Created by", transition requests and approvals, registry permissions.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from labtrack.entities import ApiToken, User
from labtrack.errors import InvalidParameterValue, ResourceDoesNotExist
from labtrack.services.tracking import now_ms
from labtrack.store.accounts import AccountStore

TOKEN_PREFIX = "lt_"
MAX_USER_NAME_LENGTH = 256
MAX_DESCRIPTION_LENGTH = 1000
# Names appear in audit trails, permission lists and token files ("<user>:<token>").
_USER_NAME = re.compile(r"[^\s:]+")
_TOKEN = re.compile(r"lt_(?P<id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def validate_user_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidParameterValue("A user name is required.")
    if len(name) > MAX_USER_NAME_LENGTH:
        raise InvalidParameterValue(
            f"User name '{name[:40]}…' exceeds the maximum length of {MAX_USER_NAME_LENGTH}.")
    if not _USER_NAME.fullmatch(name):
        raise InvalidParameterValue(
            f"Invalid user name {name!r}: no spaces or ':' allowed.")
    return name


class AccountService:
    """Users and tokens over a store that keeps accounts."""

    def __init__(self, store: object):
        if not isinstance(store, AccountStore):
            raise InvalidParameterValue(f"{store!r} keeps no users or API tokens.")
        self.store: AccountStore = store

    # -- users -------------------------------------------------------------------------------

    def create_user(self, name: str) -> User:
        return self.store.create_user(validate_user_name(name), now_ms())

    def list_users(self) -> list[User]:
        return self.store.list_users()

    def delete_user(self, name: str) -> None:
        """Delete the user and revoke all its tokens. What it created keeps its name."""
        if not self.store.delete_user(validate_user_name(name)):
            raise ResourceDoesNotExist(f"No user '{name}'.")

    # -- tokens ------------------------------------------------------------------------------

    def create_token(self, user_name: str, description: str = "") -> tuple[ApiToken, str]:
        """A new token of ``user_name``: its record and the token itself, which cannot be
        seen again."""
        if len(description) > MAX_DESCRIPTION_LENGTH:
            raise InvalidParameterValue(
                f"Token description exceeds the maximum length of {MAX_DESCRIPTION_LENGTH}.")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        record = self.store.create_token(token_id, validate_user_name(user_name),
                                         _hash(secret), description, now_ms())
        return record, f"{TOKEN_PREFIX}{token_id}_{secret}"

    def list_tokens(self, user_name: str | None = None) -> list[ApiToken]:
        return self.store.list_tokens(
            None if user_name is None else validate_user_name(user_name))

    def revoke_token(self, token_id: str) -> None:
        """Revoke by id (or by the whole token, which includes the id)."""
        match = _TOKEN.fullmatch(token_id)
        token_id = match["id"] if match else token_id
        if not self.store.delete_token(token_id):
            raise ResourceDoesNotExist(f"No API token '{token_id}'.")

    def authenticate(self, presented: str) -> str | None:
        """The user a presented token belongs to; None for anything else."""
        match = _TOKEN.fullmatch(presented)
        if match is None:
            return None
        found = self.store.token_secret_hash(match["id"])
        if found is None:
            return None
        user_name, secret_hash = found
        if not hmac.compare_digest(secret_hash, _hash(match["secret"])):
            return None
        return user_name
