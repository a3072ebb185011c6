"""Accounts of a team's ``labtrack server``: its users and their API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class User:
    """A person or a service account; ``name`` is what "Created by", approvals and registry
    permissions record."""

    name: str
    creation_time: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "creation_time": self.creation_time}


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token's public half: its id and whose it is. The secret is shown once, at creation,
    and only its hash is kept."""

    token_id: str
    user_name: str
    description: str
    creation_time: int

    def to_dict(self) -> dict[str, Any]:
        return {"token_id": self.token_id, "user_name": self.user_name,
                "description": self.description, "creation_time": self.creation_time}
