"""The accounts half of ``SqliteStore`` (mixed into it): users and API tokens."""

from __future__ import annotations

import sqlite3

from labtrack.entities import ApiToken, User
from labtrack.errors import ResourceAlreadyExists, ResourceDoesNotExist
from labtrack.store.accounts import AccountStore

_TOKEN_SELECT = "SELECT token_id, user_name, description, creation_time FROM api_tokens"


class SqliteAccountsMixin(AccountStore):
    """Needs ``_conn()`` and ``_write()`` from ``SqliteStore``."""

    def create_user(self, name, time_ms):
        with self._write() as conn:
            try:
                conn.execute("INSERT INTO users (name, creation_time) VALUES (?, ?)",
                             (name, time_ms))
            except sqlite3.IntegrityError:
                raise ResourceAlreadyExists(f"User '{name}' already exists.") from None
        return User(name, time_ms)

    def list_users(self):
        rows = self._conn().execute("SELECT name, creation_time FROM users ORDER BY name")
        return [User(*row) for row in rows]

    def delete_user(self, name):
        with self._write() as conn:
            conn.execute("DELETE FROM api_tokens WHERE user_name = ?", (name,))
            return conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def create_token(self, token_id, user_name, secret_hash, description, time_ms):
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (user_name,)).fetchone() \
                    is None:
                raise ResourceDoesNotExist(f"No user '{user_name}'.")
            conn.execute(
                "INSERT INTO api_tokens (token_id, user_name, secret_hash, description, "
                "creation_time) VALUES (?, ?, ?, ?, ?)",
                (token_id, user_name, secret_hash, description, time_ms))
        return ApiToken(token_id, user_name, description, time_ms)

    def list_tokens(self, user_name=None):
        if user_name is None:
            rows = self._conn().execute(f"{_TOKEN_SELECT} ORDER BY creation_time, token_id")
        else:
            rows = self._conn().execute(
                f"{_TOKEN_SELECT} WHERE user_name = ? ORDER BY creation_time, token_id",
                (user_name,))
        return [ApiToken(*row) for row in rows]

    def token_secret_hash(self, token_id):
        row = self._conn().execute(
            "SELECT user_name, secret_hash FROM api_tokens WHERE token_id = ?",
            (token_id,)).fetchone()
        return tuple(row) if row else None

    def delete_token(self, token_id):
        with self._write() as conn:
            return conn.execute("DELETE FROM api_tokens WHERE token_id = ?",
                                (token_id,)).rowcount > 0
