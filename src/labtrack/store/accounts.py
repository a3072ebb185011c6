"""The accounts half of the store contract: users and API tokens of ``labtrack server``.

A separate contract from ``Store``: a store that keeps no accounts simply does not derive
from it, and the services say so. Only hashes of token secrets are stored; the store checks
nothing but consistency (a token belongs to an existing user, deleting a user deletes its
tokens).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from labtrack.entities import ApiToken, User


class AccountStore(ABC):
    @abstractmethod
    def create_user(self, name: str, time_ms: int) -> User:
        """``ResourceAlreadyExists`` when the name is taken."""

    @abstractmethod
    def list_users(self) -> list[User]:
        """Every user, by name."""

    @abstractmethod
    def delete_user(self, name: str) -> bool:
        """Delete the user and all its tokens; False when there was no such user."""

    @abstractmethod
    def create_token(self, token_id: str, user_name: str, secret_hash: str, description: str,
                     time_ms: int) -> ApiToken:
        """``ResourceDoesNotExist`` when the user does not exist."""

    @abstractmethod
    def list_tokens(self, user_name: str | None = None) -> list[ApiToken]:
        """The tokens of one user, or of everyone, oldest first."""

    @abstractmethod
    def token_secret_hash(self, token_id: str) -> tuple[str, str] | None:
        """``(user name, secret hash)`` of a token, None when there is no such token."""

    @abstractmethod
    def delete_token(self, token_id: str) -> bool:
        """False when there was no such token."""
