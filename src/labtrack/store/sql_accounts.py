"""The accounts half of the SQL stores (mixed into SQLite's and PostgreSQL's): users and API
tokens, in SQL both databases accept."""

from __future__ import annotations

from labtrack.entities import ApiToken, User
from labtrack.errors import ResourceAlreadyExists, ResourceDoesNotExist
from labtrack.store.accounts import AccountStore

_TOKEN_SELECT = "SELECT token_id, user_name, description, creation_time FROM api_tokens"


class SqlAccountsMixin(AccountStore):
    """Needs ``_write()``, ``_savepoint()``, ``_fetchone()``, ``_fetchall()`` and
    ``integrity_errors`` from ``SqlStore``."""

    def create_user(self, name, time_ms):
        with self._write() as conn:
            try:
                with self._savepoint(conn):
                    conn.execute("INSERT INTO users (name, creation_time) VALUES (?, ?)",
                                 (name, time_ms))
            except self.integrity_errors:
                raise ResourceAlreadyExists(f"User '{name}' already exists.") from None
        return User(name, time_ms)

    def list_users(self):
        return [User(*row) for row in self._fetchall(
            "SELECT name, creation_time FROM users ORDER BY name")]

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
            rows = self._fetchall(f"{_TOKEN_SELECT} ORDER BY creation_time, token_id")
        else:
            rows = self._fetchall(
                f"{_TOKEN_SELECT} WHERE user_name = ? ORDER BY creation_time, token_id",
                (user_name,))
        return [ApiToken(*row) for row in rows]

    def token_secret_hash(self, token_id):
        row = self._fetchone(
            "SELECT user_name, secret_hash FROM api_tokens WHERE token_id = ?", (token_id,))
        return tuple(row) if row else None

    def delete_token(self, token_id):
        with self._write() as conn:
            return conn.execute("DELETE FROM api_tokens WHERE token_id = ?",
                                (token_id,)).rowcount > 0
