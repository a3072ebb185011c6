"""Registry entities: registered models, versions, aliases and the governance around them
(transition requests, activities, comments, permissions, webhooks).

``to_dict()`` uses MLflow's field names for the registry proper and the Databricks registry's
shapes for what only it has (transition requests, activities, comments, permissions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from labtrack.errors import InvalidParameterValue


def _key_values(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def _mapping(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in items or ()}


class ModelStage(StrEnum):
    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"

    @classmethod
    def parse(cls, value: object) -> ModelStage:
        """Case-insensitive, as MLflow accepts "production" for Production."""
        if isinstance(value, ModelStage):
            return value
        for stage in cls:
            if isinstance(value, str) and value.lower() == stage.value.lower():
                return stage
        raise InvalidParameterValue(
            f"Invalid Model Version stage: {value}. Value must be one of None, Staging, "
            "Production, Archived."
        )


class ModelVersionStatus(StrEnum):
    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


class PermissionLevel(StrEnum):
    """Per-model permission levels, each including the ones before it."""

    CAN_READ = "CAN_READ"
    CAN_EDIT = "CAN_EDIT"
    CAN_MANAGE_STAGING_VERSIONS = "CAN_MANAGE_STAGING_VERSIONS"
    CAN_MANAGE_PRODUCTION_VERSIONS = "CAN_MANAGE_PRODUCTION_VERSIONS"
    CAN_MANAGE = "CAN_MANAGE"

    @property
    def rank(self) -> int:
        return list(PermissionLevel).index(self)

    def __ge__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, PermissionLevel):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, PermissionLevel):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, PermissionLevel):
            return NotImplemented
        return self.rank <= other.rank

    def __lt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, PermissionLevel):
            return NotImplemented
        return self.rank < other.rank

    @classmethod
    def parse(cls, value: object) -> PermissionLevel:
        try:
            return cls(value)
        except ValueError:
            raise InvalidParameterValue(
                f"Invalid permission level '{value}'. Use one of: "
                f"{', '.join(level.value for level in cls)}."
            ) from None


class ActivityType(StrEnum):
    """What happened. The first seven are the Databricks registry's names."""

    APPLIED_TRANSITION = "APPLIED_TRANSITION"
    REQUESTED_TRANSITION = "REQUESTED_TRANSITION"
    CANCELLED_REQUEST = "CANCELLED_REQUEST"
    APPROVED_REQUEST = "APPROVED_REQUEST"
    REJECTED_REQUEST = "REJECTED_REQUEST"
    NEW_COMMENT = "NEW_COMMENT"
    SYSTEM_TRANSITION = "SYSTEM_TRANSITION"
    REGISTERED_MODEL_CREATED = "REGISTERED_MODEL_CREATED"
    MODEL_RENAMED = "MODEL_RENAMED"
    MODEL_VERSION_CREATED = "MODEL_VERSION_CREATED"
    MODEL_VERSION_DELETED = "MODEL_VERSION_DELETED"
    DESCRIPTION_UPDATED = "DESCRIPTION_UPDATED"
    ALIAS_SET = "ALIAS_SET"
    ALIAS_DELETED = "ALIAS_DELETED"
    COMMENT_EDITED = "COMMENT_EDITED"
    COMMENT_DELETED = "COMMENT_DELETED"
    PERMISSIONS_CHANGED = "PERMISSIONS_CHANGED"


class RequestStatus(StrEnum):
    OPEN = "OPEN"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


class ActivityAction(StrEnum):
    """What the caller may do with a request or comment (drives the buttons a UI shows)."""

    APPROVE_TRANSITION_REQUEST = "APPROVE_TRANSITION_REQUEST"
    REJECT_TRANSITION_REQUEST = "REJECT_TRANSITION_REQUEST"
    CANCEL_TRANSITION_REQUEST = "CANCEL_TRANSITION_REQUEST"
    EDIT_COMMENT = "EDIT_COMMENT"
    DELETE_COMMENT = "DELETE_COMMENT"


@dataclass(frozen=True, slots=True)
class ModelVersion:
    name: str
    version: str
    creation_timestamp: int
    last_updated_timestamp: int
    user_id: str
    current_stage: ModelStage
    source: str
    status: ModelVersionStatus = ModelVersionStatus.READY
    description: str = ""
    run_id: str | None = None
    run_link: str | None = None
    status_message: str | None = None
    model_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
            "user_id": self.user_id,
            "current_stage": str(self.current_stage),
            "description": self.description,
            "source": self.source,
            "status": str(self.status),
            "tags": _key_values(self.tags),
            "aliases": list(self.aliases),
        }
        for key in ("run_id", "run_link", "status_message", "model_id"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelVersion:
        return cls(
            name=data["name"],
            version=str(data["version"]),
            creation_timestamp=int(data.get("creation_timestamp", 0)),
            last_updated_timestamp=int(data.get("last_updated_timestamp", 0)),
            user_id=data.get("user_id", ""),
            current_stage=ModelStage.parse(data.get("current_stage", "None")),
            source=data.get("source", ""),
            status=ModelVersionStatus(data.get("status", "READY")),
            description=data.get("description", ""),
            run_id=data.get("run_id"),
            run_link=data.get("run_link"),
            status_message=data.get("status_message"),
            model_id=data.get("model_id"),
            tags=_mapping(data.get("tags")),
            aliases=tuple(data.get("aliases") or ()),
        )


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    user_id: str
    description: str = ""
    latest_versions: tuple[ModelVersion, ...] = ()  # the newest version of each stage
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> version
    id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.id,
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
            "user_id": self.user_id,
            "description": self.description,
            "latest_versions": [v.to_dict() for v in self.latest_versions],
            "tags": _key_values(self.tags),
            "aliases": [{"alias": a, "version": v} for a, v in self.aliases.items()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegisteredModel:
        return cls(
            name=data["name"],
            creation_timestamp=int(data.get("creation_timestamp", 0)),
            last_updated_timestamp=int(data.get("last_updated_timestamp", 0)),
            user_id=data.get("user_id", ""),
            description=data.get("description", ""),
            latest_versions=tuple(ModelVersion.from_dict(v)
                                  for v in data.get("latest_versions") or ()),
            tags=_mapping(data.get("tags")),
            aliases={a["alias"]: str(a["version"]) for a in data.get("aliases") or ()},
            id=str(data.get("id", "")),
        )


@dataclass(frozen=True, slots=True)
class Activity:
    """One immutable event in a model's history."""

    id: str
    model_name: str
    version: str | None
    activity_type: ActivityType
    user_id: str
    creation_timestamp: int
    from_stage: ModelStage | None = None
    to_stage: ModelStage | None = None
    comment: str | None = None
    system_comment: str | None = None
    available_actions: tuple[ActivityAction, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "model_name": self.model_name,
            "activity_type": str(self.activity_type),
            "user_id": self.user_id,
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.creation_timestamp,
        }
        if self.version is not None:
            out["version"] = self.version
        for key in ("from_stage", "to_stage", "comment", "system_comment"):
            value = getattr(self, key)
            if value is not None:
                out[key] = str(value)
        if self.available_actions:
            out["available_actions"] = [str(a) for a in self.available_actions]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Activity:
        return cls(
            id=str(data["id"]),
            model_name=data.get("model_name", ""),
            version=None if data.get("version") is None else str(data["version"]),
            activity_type=ActivityType(data["activity_type"]),
            user_id=data.get("user_id", ""),
            creation_timestamp=int(data.get("creation_timestamp", 0)),
            from_stage=ModelStage.parse(data["from_stage"]) if data.get("from_stage") else None,
            to_stage=ModelStage.parse(data["to_stage"]) if data.get("to_stage") else None,
            comment=data.get("comment"),
            system_comment=data.get("system_comment"),
            available_actions=tuple(ActivityAction(a) for a in data.get("available_actions")
                                    or ()),
        )


@dataclass(frozen=True, slots=True)
class TransitionRequest:
    """An open (or closed) request to move a version to ``to_stage``."""

    id: str
    model_name: str
    version: str
    to_stage: ModelStage
    user_id: str
    creation_timestamp: int
    status: RequestStatus = RequestStatus.OPEN
    comment: str | None = None
    resolved_by: str | None = None
    resolved_timestamp: int | None = None
    available_actions: tuple[ActivityAction, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "model_name": self.model_name,
            "version": self.version,
            "to_stage": str(self.to_stage),
            "user_id": self.user_id,
            "creation_timestamp": self.creation_timestamp,
            "status": str(self.status),
            "available_actions": [str(a) for a in self.available_actions],
        }
        for key in ("comment", "resolved_by", "resolved_timestamp"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransitionRequest:
        return cls(
            id=str(data["id"]),
            model_name=data["model_name"],
            version=str(data["version"]),
            to_stage=ModelStage.parse(data["to_stage"]),
            user_id=data.get("user_id", ""),
            creation_timestamp=int(data.get("creation_timestamp", 0)),
            status=RequestStatus(data.get("status", "OPEN")),
            comment=data.get("comment"),
            resolved_by=data.get("resolved_by"),
            resolved_timestamp=data.get("resolved_timestamp"),
            available_actions=tuple(ActivityAction(a) for a in data.get("available_actions")
                                    or ()),
        )


@dataclass(frozen=True, slots=True)
class Comment:
    id: str
    model_name: str
    version: str
    user_id: str
    comment: str
    creation_timestamp: int
    last_updated_timestamp: int
    available_actions: tuple[ActivityAction, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model_name": self.model_name,
            "version": self.version,
            "user_id": self.user_id,
            "comment": self.comment,
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
            "available_actions": [str(a) for a in self.available_actions],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Comment:
        return cls(
            id=str(data["id"]),
            model_name=data.get("model_name", ""),
            version=str(data.get("version", "")),
            user_id=data.get("user_id", ""),
            comment=data["comment"],
            creation_timestamp=int(data.get("creation_timestamp", 0)),
            last_updated_timestamp=int(data.get("last_updated_timestamp", 0)),
            available_actions=tuple(ActivityAction(a) for a in data.get("available_actions")
                                    or ()),
        )


@dataclass(frozen=True, slots=True)
class ModelPermission:
    user_name: str
    permission_level: PermissionLevel

    def to_dict(self) -> dict[str, Any]:
        return {"user_name": self.user_name,
                "all_permissions": [{"permission_level": str(self.permission_level),
                                     "inherited": False}]}


class WebhookEvent(StrEnum):
    """The Databricks registry's webhook events."""

    MODEL_VERSION_CREATED = "MODEL_VERSION_CREATED"
    MODEL_VERSION_TRANSITIONED_STAGE = "MODEL_VERSION_TRANSITIONED_STAGE"
    MODEL_VERSION_TRANSITIONED_TO_STAGING = "MODEL_VERSION_TRANSITIONED_TO_STAGING"
    MODEL_VERSION_TRANSITIONED_TO_PRODUCTION = "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION"
    MODEL_VERSION_TRANSITIONED_TO_ARCHIVED = "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED"
    TRANSITION_REQUEST_CREATED = "TRANSITION_REQUEST_CREATED"
    TRANSITION_REQUEST_TO_STAGING_CREATED = "TRANSITION_REQUEST_TO_STAGING_CREATED"
    TRANSITION_REQUEST_TO_PRODUCTION_CREATED = "TRANSITION_REQUEST_TO_PRODUCTION_CREATED"
    TRANSITION_REQUEST_TO_ARCHIVED_CREATED = "TRANSITION_REQUEST_TO_ARCHIVED_CREATED"
    COMMENT_CREATED = "COMMENT_CREATED"
    REGISTERED_MODEL_CREATED = "REGISTERED_MODEL_CREATED"
    MODEL_VERSION_TAG_SET = "MODEL_VERSION_TAG_SET"


class WebhookStatus(StrEnum):
    ACTIVE = "ACTIVE"
    TEST_MODE = "TEST_MODE"  # only the test endpoint triggers it
    DISABLED = "DISABLED"


@dataclass(frozen=True, slots=True)
class Webhook:
    """A registry webhook. The secret is stored but never part of ``to_dict()``."""

    id: str
    events: tuple[WebhookEvent, ...]
    url: str
    status: WebhookStatus
    creation_timestamp: int
    last_updated_timestamp: int
    model_name: str | None = None  # None: registry-wide
    description: str = ""
    enable_ssl_verification: bool = True
    has_secret: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "events": [str(e) for e in self.events],
            "status": str(self.status),
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
            "description": self.description,
            "http_url_spec": {"url": self.url,
                              "enable_ssl_verification": self.enable_ssl_verification,
                              "has_secret": self.has_secret},
        }
        if self.model_name is not None:
            out["model_name"] = self.model_name
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Webhook:
        spec = data.get("http_url_spec") or {}
        return cls(
            id=str(data["id"]),
            events=tuple(WebhookEvent(e) for e in data.get("events") or ()),
            url=spec.get("url", ""),
            status=WebhookStatus(data.get("status", "ACTIVE")),
            creation_timestamp=int(data.get("creation_timestamp", 0)),
            last_updated_timestamp=int(data.get("last_updated_timestamp", 0)),
            model_name=data.get("model_name"),
            description=data.get("description", ""),
            enable_ssl_verification=bool(spec.get("enable_ssl_verification", True)),
            has_secret=bool(spec.get("has_secret", False)),
        )


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"  # gave up after the last retry


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One event sent (or being sent) to one webhook, with its outcome."""

    id: str
    webhook_id: str
    event: WebhookEvent
    status: DeliveryStatus
    attempts: int
    creation_timestamp: int
    last_attempt_timestamp: int | None = None
    response_status: int | None = None
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "webhook_id": self.webhook_id,
            "event": str(self.event),
            "status": str(self.status),
            "attempts": self.attempts,
            "creation_timestamp": self.creation_timestamp,
        }
        for key in ("last_attempt_timestamp", "response_status", "last_error"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out
