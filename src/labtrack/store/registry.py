"""The registry half of the store contract.

As for tracking, the store keeps the data consistent and applies no policy: permission checks,
stage rules and messages live in ``labtrack.services.registry``. Every write that changes what
a model *is* also takes the audit records (``ActivityRecord``) the service composed, and writes
them in the same transaction, so the trail can never miss or invent an event. Operations that
must not interleave (a transition and the approval that causes it; two approvals of one
request) are single store calls.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from labtrack.entities import (
    Activity,
    ActivityType,
    Comment,
    DeliveryStatus,
    ModelPermission,
    ModelStage,
    ModelVersion,
    RegisteredModel,
    RequestStatus,
    TransitionRequest,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
    WebhookStatus,
)
from labtrack.store.query import Comparison, OrderTerm


class ActivityRecord(NamedTuple):
    """An audit event to write; ``version`` None for model-level events."""

    activity_type: ActivityType
    user_id: str
    version: str | None = None
    from_stage: ModelStage | None = None
    to_stage: ModelStage | None = None
    comment: str | None = None
    system_comment: str | None = None


@dataclass(frozen=True, slots=True)
class TransitionOutcome:
    version: ModelVersion
    from_stage: ModelStage
    archived: tuple[ModelVersion, ...]  # versions moved out of the target stage as a result


class RequestNotOpen(Exception):
    """Raised by the store when a request was already approved, rejected or cancelled."""

    def __init__(self, request: TransitionRequest):
        super().__init__(request.status)
        self.request = request


class RegistryStore(ABC):
    # -- registered models -------------------------------------------------------------------

    @abstractmethod
    def create_registered_model(
        self, name: str, user_id: str, description: str, tags: dict[str, str], time_ms: int,
        activity: ActivityRecord,
    ) -> RegisteredModel:
        """Raises ``ResourceAlreadyExists`` when the name is taken."""

    @abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel | None:
        """With the latest version of each stage, tags and aliases."""

    @abstractmethod
    def rename_registered_model(self, name: str, new_name: str, time_ms: int,
                                activity: ActivityRecord) -> None: ...

    @abstractmethod
    def update_registered_model(self, name: str, description: str, time_ms: int,
                                activity: ActivityRecord) -> None: ...

    @abstractmethod
    def delete_registered_model(self, name: str) -> None:
        """Removes the model with its versions, tags, aliases, requests, comments,
        permissions and webhooks; its activities stay."""

    @abstractmethod
    def search_registered_models(
        self, comparisons: Sequence[Comparison], order_by: Sequence[OrderTerm],
        max_results: int, offset: int,
    ) -> list[RegisteredModel]: ...

    @abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str, time_ms: int) -> None:
        ...

    @abstractmethod
    def delete_registered_model_tag(self, name: str, key: str) -> bool: ...

    # -- versions ----------------------------------------------------------------------------

    @abstractmethod
    def create_model_version(
        self, name: str, source: str, run_id: str | None, run_link: str | None,
        description: str, user_id: str, tags: dict[str, str], logged_model_id: str | None,
        time_ms: int,
    ) -> ModelVersion:
        """Numbers the version (max + 1, atomically) and records MODEL_VERSION_CREATED."""

    @abstractmethod
    def get_model_version(self, name: str, version: str) -> ModelVersion | None: ...

    @abstractmethod
    def update_model_version(self, name: str, version: str, description: str, time_ms: int,
                             activity: ActivityRecord) -> None: ...

    @abstractmethod
    def delete_model_version(self, name: str, version: str, time_ms: int,
                             activity: ActivityRecord) -> None: ...

    @abstractmethod
    def search_model_versions(
        self, comparisons: Sequence[Comparison], order_by: Sequence[OrderTerm],
        max_results: int, offset: int,
    ) -> list[ModelVersion]: ...

    @abstractmethod
    def set_model_version_tag(self, name: str, version: str, key: str, value: str,
                              time_ms: int) -> None: ...

    @abstractmethod
    def delete_model_version_tag(self, name: str, version: str, key: str) -> bool: ...

    @abstractmethod
    def latest_versions(self, name: str, stages: Sequence[ModelStage]) -> list[ModelVersion]:
        """The newest version in each of ``stages`` (all stages when empty)."""

    @abstractmethod
    def set_alias(self, name: str, alias: str, version: str, time_ms: int,
                  activity: ActivityRecord) -> str | None:
        """Point ``alias`` at ``version``; returns the version it pointed at before."""

    @abstractmethod
    def delete_alias(self, name: str, alias: str, time_ms: int,
                     activity: ActivityRecord) -> bool: ...

    @abstractmethod
    def version_for_alias(self, name: str, alias: str) -> str | None: ...

    # -- stages and requests -----------------------------------------------------------------

    @abstractmethod
    def transition_stage(
        self,
        name: str,
        version: str,
        to_stage: ModelStage,
        archive_existing: bool,
        time_ms: int,
        activities: Sequence[ActivityRecord],
        resolve_request: tuple[str, RequestStatus, str] | None = None,
    ) -> TransitionOutcome:
        """Move a version to a stage in one transaction: optionally close an open request
        first (``(request_id, new status, user)``; raises ``RequestNotOpen`` when it is no
        longer open), archive the other versions of ``to_stage`` when asked (each recorded
        as a SYSTEM_TRANSITION by the same user), and write ``activities``."""

    @abstractmethod
    def create_transition_request(
        self, name: str, version: str, to_stage: ModelStage, user_id: str,
        comment: str | None, time_ms: int,
    ) -> TransitionRequest:
        """Records REQUESTED_TRANSITION too."""

    @abstractmethod
    def get_transition_request(self, request_id: str) -> TransitionRequest | None: ...

    @abstractmethod
    def list_transition_requests(
        self, name: str | None = None, version: str | None = None,
        status: RequestStatus | None = RequestStatus.OPEN,
    ) -> list[TransitionRequest]:
        """Oldest first."""

    @abstractmethod
    def resolve_transition_request(
        self, request_id: str, status: RequestStatus, user_id: str, time_ms: int,
        activity: ActivityRecord,
    ) -> TransitionRequest:
        """Close an open request without a transition (reject, cancel); ``RequestNotOpen``
        when someone closed it first."""

    # -- audit trail and comments ------------------------------------------------------------

    @abstractmethod
    def list_activities(self, name: str, version: str | None, max_results: int,
                        offset: int) -> list[Activity]:
        """Newest first."""

    @abstractmethod
    def create_comment(self, name: str, version: str, user_id: str, comment: str,
                       time_ms: int) -> Comment:
        """Records NEW_COMMENT too."""

    @abstractmethod
    def get_comment(self, comment_id: str) -> Comment | None: ...

    @abstractmethod
    def update_comment(self, comment_id: str, comment: str, time_ms: int,
                       activity: ActivityRecord) -> Comment: ...

    @abstractmethod
    def delete_comment(self, comment_id: str, time_ms: int, activity: ActivityRecord) -> None:
        ...

    @abstractmethod
    def list_comments(self, name: str, version: str) -> list[Comment]: ...

    # -- permissions -------------------------------------------------------------------------

    @abstractmethod
    def get_permissions(self, name: str) -> list[ModelPermission]: ...

    @abstractmethod
    def set_permissions(self, name: str, entries: Sequence[ModelPermission], replace: bool,
                        time_ms: int, activity: ActivityRecord) -> None:
        """``replace``: the list becomes exactly ``entries``; otherwise entries are added or
        changed."""

    @abstractmethod
    def get_model_id(self, name: str) -> str | None:
        """The model's stable id (permissions are addressed by it)."""

    @abstractmethod
    def get_model_name(self, model_id: str) -> str | None: ...

    # -- webhooks ----------------------------------------------------------------------------

    @abstractmethod
    def create_webhook(self, webhook_id: str, model_name: str | None,
                       events: Sequence[WebhookEvent], url: str, secret: str | None,
                       status: WebhookStatus, description: str, enable_ssl_verification: bool,
                       time_ms: int) -> Webhook: ...

    @abstractmethod
    def get_webhook(self, webhook_id: str) -> Webhook | None: ...

    @abstractmethod
    def get_webhook_secret(self, webhook_id: str) -> str | None: ...

    @abstractmethod
    def list_webhooks(self, model_name: str | None, registry_wide: bool) -> list[Webhook]:
        """A model's webhooks (or, with ``registry_wide``, the ones without a model)."""

    @abstractmethod
    def update_webhook(self, webhook_id: str, time_ms: int, **changes) -> Webhook:
        """``changes``: events, url, secret, status, description, enable_ssl_verification."""

    @abstractmethod
    def delete_webhook(self, webhook_id: str) -> bool: ...

    @abstractmethod
    def webhooks_for_event(self, model_name: str, event: WebhookEvent) -> list[Webhook]:
        """ACTIVE webhooks of the model and registry-wide ones subscribed to ``event``."""

    @abstractmethod
    def create_delivery(self, delivery_id: str, webhook_id: str, event: WebhookEvent,
                        payload: str, time_ms: int, claimed_by: str | None = None) -> None:
        """A PENDING delivery; with ``claimed_by``, already claimed by that sender."""

    @abstractmethod
    def claim_delivery(self, delivery_id: str, claimed_by: str, time_ms: int,
                       stale_before_ms: int) -> bool:
        """Atomically make ``claimed_by`` the one sender of a PENDING delivery: True when the
        delivery was unclaimed, already ``claimed_by``'s (renewing the claim), or claimed
        before ``stale_before_ms`` by a sender presumed dead; False otherwise."""

    @abstractmethod
    def update_delivery(self, delivery_id: str, status: DeliveryStatus, attempts: int,
                        time_ms: int, response_status: int | None,
                        last_error: str | None) -> None: ...

    @abstractmethod
    def list_deliveries(self, webhook_id: str, max_results: int) -> list[WebhookDelivery]:
        """Newest first."""

    @abstractmethod
    def pending_deliveries(self, stale_before_ms: int) -> list[tuple[WebhookDelivery, str]]:
        """Deliveries not finished yet that no live sender holds (unclaimed, or claimed
        before ``stale_before_ms``), with their payloads, oldest first (resumed after a
        restart; ``claim_delivery`` decides who sends each)."""
