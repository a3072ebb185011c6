"""Who may do what to a registered model.

Levels (each includes the ones before): ``CAN_READ`` < ``CAN_EDIT`` <
``CAN_MANAGE_STAGING_VERSIONS`` < ``CAN_MANAGE_PRODUCTION_VERSIONS`` < ``CAN_MANAGE``.

- Readers read and comment. Editors edit descriptions and tags, create versions and *request*
  transitions.
- Moving a version between two stages needs the higher of the two stages' levels: Staging,
  None and Archived need ``CAN_MANAGE_STAGING_VERSIONS``, Production needs
  ``CAN_MANAGE_PRODUCTION_VERSIONS``. The same level approves or rejects a request for that
  move; aliases need ``CAN_MANAGE_STAGING_VERSIONS``.
- Managers also rename and delete models, delete versions, grant permissions and manage the
  model's webhooks. The creator of a model is its manager; registry admins manage everything.
- A user the model's access list does not name gets the registry's default level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labtrack.entities import ModelStage, PermissionLevel
from labtrack.errors import LabtrackError

READ = PermissionLevel.CAN_READ
EDIT = PermissionLevel.CAN_EDIT
MANAGE_STAGING = PermissionLevel.CAN_MANAGE_STAGING_VERSIONS
MANAGE_PRODUCTION = PermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS
MANAGE = PermissionLevel.CAN_MANAGE

_STAGE_LEVEL = {
    ModelStage.NONE: MANAGE_STAGING,
    ModelStage.STAGING: MANAGE_STAGING,
    ModelStage.ARCHIVED: MANAGE_STAGING,
    ModelStage.PRODUCTION: MANAGE_PRODUCTION,
}


class PermissionDenied(LabtrackError):
    error_code = "PERMISSION_DENIED"


@dataclass(frozen=True)
class RegistrySettings:
    """Registry policy, set by whoever hosts the service (the server's traits).

    :param default_permission: level of users a model's access list does not name (``None``:
        no access at all).
    :param require_distinct_approver: stages whose requests the requester may not approve.
    :param admins: users who hold ``CAN_MANAGE`` on every model and manage registry-wide
        webhooks.
    :param webhook_allowed_hosts: hosts (names, IPs or CIDR ranges) webhooks may call even
        though they are loopback, private or link-local; public hosts need no entry.
    :param confine_sources: refuse version sources outside the artifact store (REST callers).
    """

    default_permission: PermissionLevel | None = PermissionLevel.CAN_READ
    require_distinct_approver: frozenset[ModelStage] = frozenset({ModelStage.PRODUCTION})
    admins: frozenset[str] = field(default_factory=frozenset)
    webhook_allowed_hosts: tuple[str, ...] = ()
    confine_sources: bool = False


def transition_level(from_stage: ModelStage, to_stage: ModelStage) -> PermissionLevel:
    return max(_STAGE_LEVEL[from_stage], _STAGE_LEVEL[to_stage], key=lambda level: level.rank)


def require(level: PermissionLevel | None, needed: PermissionLevel, user: str, action: str,
            model: str) -> None:
    if level is None or level < needed:
        held = "no permission" if level is None else str(level)
        raise PermissionDenied(
            f"User '{user}' has {held} on registered model '{model}'; {action} needs "
            f"{needed}."
        )
