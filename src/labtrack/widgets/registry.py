"""The model registry in a notebook: ``RegistryBrowser`` (registered models, a model's versions,
open requests and history, with actions to request a transition and comment) and
``TransitionRequests`` (open requests with Approve / Reject / Cancel for whoever may act).

The browser asks the kernel to act through one anywidget command (``_invoke``); each action
has a Python method of the same name (``select_model``, ``request_transition``, ``comment``,
``approve``, ``reject``, ``cancel``, ``refresh``), so code and tests drive the widget exactly
as the buttons do. After every action, successful or not, the widget reads the affected
tables again, so what it shows is what the registry holds (a request someone else approved
first disappears while the conflict is explained). Errors — permission denied, a request
that is no longer open, bad input — land in the ``error`` trait, shown in the widget; the
Python methods raise them too.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import anywidget
import traitlets
from anywidget.experimental import command

from labtrack.client import TrackingClient
from labtrack.entities import (
    Activity,
    ActivityType,
    ModelStage,
    ModelVersion,
    RegisteredModel,
    TransitionRequest,
)
from labtrack.errors import InvalidParameterValue, LabtrackError, ResourceDoesNotExist
from labtrack.widgets._fallback import html_table
from labtrack.widgets.live_run import STATIC

T = TypeVar("T")

#: How the history names each kind of event ("ann requested …").
ACTIVITY_LABELS = {
    ActivityType.APPLIED_TRANSITION: "moved",
    ActivityType.REQUESTED_TRANSITION: "requested a move",
    ActivityType.CANCELLED_REQUEST: "cancelled a request",
    ActivityType.APPROVED_REQUEST: "approved a request",
    ActivityType.REJECTED_REQUEST: "rejected a request",
    ActivityType.NEW_COMMENT: "commented",
    ActivityType.SYSTEM_TRANSITION: "archived (system)",
    ActivityType.REGISTERED_MODEL_CREATED: "created the model",
    ActivityType.MODEL_RENAMED: "renamed the model",
    ActivityType.MODEL_VERSION_CREATED: "registered a version",
    ActivityType.MODEL_VERSION_DELETED: "deleted a version",
    ActivityType.DESCRIPTION_UPDATED: "edited the description",
    ActivityType.ALIAS_SET: "moved an alias",
    ActivityType.ALIAS_DELETED: "removed an alias",
    ActivityType.COMMENT_EDITED: "edited a comment",
    ActivityType.COMMENT_DELETED: "deleted a comment",
    ActivityType.PERMISSIONS_CHANGED: "changed permissions",
}

MAX_MODELS = 1000
ACTIVITY_PAGE = 100
MAX_ACTIVITIES = 1000
RUN_NAME_CACHE = 2000


def _local_time(milliseconds: int | None) -> str:
    """A timestamp as the kernel's local date and time (for the static fallbacks)."""
    if not milliseconds:
        return ""
    return datetime.fromtimestamp(milliseconds / 1000).strftime("%Y-%m-%d %H:%M")


def _quote(value: str) -> str:
    """A string literal of the search grammar (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def _model_row(model: RegisteredModel, pending: int) -> dict[str, Any]:
    by_stage: dict[ModelStage, str] = {}
    for version in sorted(model.latest_versions, key=lambda v: int(v.version)):
        by_stage[version.current_stage] = version.version  # the newest one of each stage
    latest = max((int(v.version) for v in model.latest_versions), default=None)
    return {
        "name": model.name,
        "latest_version": "" if latest is None else str(latest),
        "staging": by_stage.get(ModelStage.STAGING, ""),
        "production": by_stage.get(ModelStage.PRODUCTION, ""),
        "description": model.description,
        "user_id": model.user_id,
        "last_updated_timestamp": model.last_updated_timestamp,
        "pending": pending,
    }


def _version_row(version: ModelVersion, run_name: str, pending: list[dict[str, Any]]
                 ) -> dict[str, Any]:
    return {
        "version": version.version,
        "creation_timestamp": version.creation_timestamp,
        "user_id": version.user_id,
        "current_stage": str(version.current_stage),
        "run_id": version.run_id or "",
        "run_name": run_name,
        "source": version.source,
        "status": str(version.status),
        "description": version.description,
        "aliases": list(version.aliases),
        "pending": [{"id": r["id"], "to_stage": r["to_stage"], "user_id": r["user_id"]}
                    for r in pending],
    }


def _request_row(request: TransitionRequest, from_stage: str) -> dict[str, Any]:
    return {
        "id": request.id,
        "model_name": request.model_name,
        "version": request.version,
        "from_stage": from_stage,
        "to_stage": str(request.to_stage),
        "user_id": request.user_id,
        "creation_timestamp": request.creation_timestamp,
        "comment": request.comment or "",
        "available_actions": [str(a) for a in request.available_actions],
    }


def _activity_row(activity: Activity) -> dict[str, Any]:
    return {
        "id": activity.id,
        "version": activity.version or "",
        "activity_type": str(activity.activity_type),
        "label": ACTIVITY_LABELS.get(activity.activity_type, str(activity.activity_type)),
        "user_id": activity.user_id,
        "creation_timestamp": activity.creation_timestamp,
        "from_stage": "" if activity.from_stage is None else str(activity.from_stage),
        "to_stage": "" if activity.to_stage is None else str(activity.to_stage),
        "comment": activity.comment or "",
        "system_comment": activity.system_comment or "",
    }


def _requests_table(requests: list[dict[str, Any]], caption: str,
                    with_model: bool = True) -> str:
    columns = (["Model"] if with_model else []) + [
        "Version", "From", "To", "Requested by", "Requested at", "Comment"]
    rows = [([r["model_name"]] if with_model else []) + [
        r["version"], r["from_stage"], r["to_stage"], r["user_id"],
        _local_time(r["creation_timestamp"]), r["comment"]] for r in requests]
    return html_table(columns, rows, caption=caption)


class _RegistryWidget(anywidget.AnyWidget):
    """What both widgets share: the client, the outcome of the last action, and the request
    actions (approve, reject, cancel) that both show wherever a request is listed."""

    _css = STATIC / "widgets.css"  # each subclass names its own module (_esm)

    #: The last action's outcome ("Approved …"), cleared when the next one starts.
    message = traitlets.Unicode("").tag(sync=True)
    #: Why the last action or refresh failed ("" when it did not), and the error's code
    #: (``PERMISSION_DENIED``, ``RESOURCE_CONFLICT``, ``INVALID_PARAMETER_VALUE`` …).
    error = traitlets.Unicode("").tag(sync=True)
    error_code = traitlets.Unicode("").tag(sync=True)

    #: The actions the browser may invoke, each a method of the same name.
    _actions: frozenset[str] = frozenset({"refresh", "approve", "reject", "cancel"})

    def __init__(self, client: TrackingClient | None = None, **kwargs):
        import labtrack

        self._client = client or TrackingClient(labtrack.get_tracking_uri())
        # Every request this widget has listed, by id: enough to act on one that has since
        # been closed by someone else (the registry then answers with who closed it).
        self._known_requests: dict[str, TransitionRequest] = {}
        super().__init__(**kwargs)

    # -- reading -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read every table again. Never raises: a failure is shown in ``error``."""
        try:
            self._load()
        except Exception as error:  # shown in the widget rather than lost
            self._show_error(error)
        else:
            self._clear_error()

    def _load(self) -> None:  # pragma: no cover - every widget defines it
        raise NotImplementedError

    def _request_rows(self, requests: list[TransitionRequest]) -> list[dict[str, Any]]:
        """Open requests as table rows, each with its version's current stage."""
        stages: dict[tuple[str, str], str] = {}
        rows = []
        for request in requests:
            self._known_requests[request.id] = request
            key = (request.model_name, request.version)
            if key not in stages:
                try:
                    stages[key] = str(self._client.get_model_version(*key).current_stage)
                except ResourceDoesNotExist:
                    stages[key] = ""
            rows.append(_request_row(request, stages[key]))
        return rows

    # -- acting ------------------------------------------------------------------------------

    def _show_error(self, error: BaseException) -> None:
        with self.hold_sync():
            self.error = (error.message if isinstance(error, LabtrackError)
                          else f"{type(error).__name__}: {error}")
            self.error_code = (error.error_code if isinstance(error, LabtrackError)
                               else "INTERNAL_ERROR")

    def _clear_error(self) -> None:
        with self.hold_sync():
            self.error = ""
            self.error_code = ""

    def _act(self, action: Callable[[], T], done: Callable[[T], str],
             reload: bool = True) -> T:
        """Run one action, then read the tables again whatever happened (someone may have
        acted first); the action's error, if any, is shown and raised. ``reload=False``: the
        action is itself a read."""
        self.message = ""
        try:
            outcome = action()
        except Exception as error:
            if reload:
                try:
                    self._load()
                except Exception:
                    pass  # the action's own error is the one to show
            self._show_error(error)
            raise
        if reload:
            self.refresh()
        else:
            self._clear_error()
        self.message = done(outcome)
        return outcome

    @command
    def _invoke(self, msg: Any, buffers: list[bytes]) -> tuple[dict[str, Any], list[bytes]]:
        """The browser's one command: ``{"action": name, "args": {…}}`` calls the method of
        that name. Answers ``{"ok", "message", "error", "error_code"}``; the widget's state
        arrives through its traits first."""
        action = msg.get("action") if isinstance(msg, dict) else None
        args = msg.get("args") if isinstance(msg, dict) else None
        try:
            if action not in self._actions or not isinstance(args, dict):
                raise InvalidParameterValue(f"Unknown widget action {action!r}.")
            getattr(self, action)(**args)
        except Exception as error:
            self._show_error(error)  # _act has shown it already, but not a malformed call
            return {"ok": False, "message": "", "error": self.error,
                    "error_code": self.error_code}, []
        return {"ok": not self.error, "message": self.message, "error": self.error,
                "error_code": self.error_code}, []

    def _request(self, request_id: str) -> TransitionRequest:
        request_id = str(request_id)
        if request_id not in self._known_requests:
            self._load()  # opened since the last refresh
        try:
            return self._known_requests[request_id]
        except KeyError:
            raise ResourceDoesNotExist(f"Transition request {request_id} not found.") from None

    def approve(self, request_id: str, comment: str = "",
                archive_existing: bool = False) -> Activity:
        """Approve a request: its version moves to the requested stage (and, with
        ``archive_existing``, the versions now in that stage move to Archived)."""
        request = self._known_or_error(request_id)
        return self._act(
            lambda: self._client.approve_transition_request(
                request.model_name, request.version, str(request.to_stage),
                archive_existing_versions=bool(archive_existing), comment=comment or None,
                request_id=request.id),
            lambda _: (f"Approved: version {request.version} of '{request.model_name}' is now "
                       f"in {request.to_stage}"
                       + (f"; other {request.to_stage} versions archived."
                          if archive_existing else ".")))

    def reject(self, request_id: str, comment: str = "") -> Activity:
        """Reject a request (the version stays where it is)."""
        request = self._known_or_error(request_id)
        return self._act(
            lambda: self._client.reject_transition_request(
                request.model_name, request.version, str(request.to_stage),
                comment=comment or None, request_id=request.id),
            lambda _: (f"Rejected the request to move version {request.version} of "
                       f"'{request.model_name}' to {request.to_stage}."))

    def cancel(self, request_id: str, comment: str = "") -> Activity:
        """Withdraw a request (its creator, or a manager of the model)."""
        request = self._known_or_error(request_id)
        return self._act(
            lambda: self._client.cancel_transition_request(
                request.model_name, request.version, str(request.to_stage),
                comment=comment or None, request_id=request.id),
            lambda _: (f"Cancelled the request to move version {request.version} of "
                       f"'{request.model_name}' to {request.to_stage}."))

    def _known_or_error(self, request_id: str) -> TransitionRequest:
        self.message = ""
        try:
            return self._request(request_id)
        except Exception as error:
            self._show_error(error)
            raise

    def _error_html(self) -> str:
        return (f"<p class='labtrack-static-error'>{html.escape(self.error)}</p>"
                if self.error else "")


class RegistryBrowser(_RegistryWidget):
    """Registered models (Name, Latest Version, Staging, Production, open requests); for the
    selected model its versions, open requests and history, with actions to request a
    transition, comment, and approve / reject / cancel requests.

    :param client: the ``TrackingClient`` to read and act through (default: one for
        ``labtrack.get_tracking_uri()``); its user is who acts.
    :param filter_string: a registered-model search (``name LIKE 'demand%'``).
    """

    _esm = STATIC / "registry_browser.js"

    filter_string = traitlets.Unicode("").tag(sync=True)
    models = traitlets.List().tag(sync=True)
    models_more = traitlets.Bool(False).tag(sync=True)  # more models match than are listed
    selected = traitlets.Unicode("").tag(sync=True)
    model = traitlets.Dict().tag(sync=True)  # the selected model ({} when none)
    versions = traitlets.List().tag(sync=True)  # newest first
    requests = traitlets.List().tag(sync=True)  # the selected model's open requests
    activities = traitlets.List().tag(sync=True)  # newest first
    activities_more = traitlets.Bool(False).tag(sync=True)

    _actions = _RegistryWidget._actions | {"select_model", "search", "request_transition",
                                           "comment", "more_activities"}

    def __init__(self, client: TrackingClient | None = None, filter_string: str = "",
                 **kwargs):
        self._activity_limit = ACTIVITY_PAGE
        self._run_names: dict[str, str] = {}
        super().__init__(client, filter_string=filter_string or "", **kwargs)
        self.refresh()

    def _load(self) -> None:
        # The list and the selected model are read independently: a bad filter still shows
        # the selected model, an unreadable model still shows the list.
        failures: list[Exception] = []
        models: list[dict[str, Any]] = []
        models_more = False
        open_requests: list[TransitionRequest] = []
        try:
            found = self._client.search_registered_models(
                self.filter_string or None, max_results=MAX_MODELS, order_by=["name ASC"])
            open_requests = self._client.list_transition_requests()
            pending: dict[str, int] = {}
            for request in open_requests:
                self._known_requests[request.id] = request
                pending[request.model_name] = pending.get(request.model_name, 0) + 1
            models = [_model_row(m, pending.get(m.name, 0)) for m in found]
            models_more = bool(found.token)
        except Exception as error:
            failures.append(error)
        detail: dict[str, Any] = {}
        versions: list[dict[str, Any]] = []
        requests: list[dict[str, Any]] = []
        activities: list[dict[str, Any]] = []
        activities_more = False
        if self.selected:
            try:
                if failures:  # the open requests are still needed
                    open_requests = self._client.list_transition_requests(self.selected)
                detail, versions, requests, activities, activities_more = self._load_model(
                    self.selected, [r for r in open_requests
                                    if r.model_name == self.selected])
            except Exception as error:
                failures.append(error)
        with self.hold_sync():
            self.models = models
            self.models_more = models_more
            self.model = detail
            self.versions = versions
            self.requests = requests
            self.activities = activities
            self.activities_more = activities_more
        if failures:
            raise failures[0]

    def _load_model(self, name: str, open_requests: list[TransitionRequest]):
        model = self._client.get_registered_model(name)
        found = self._client.search_model_versions(f"name = {_quote(name)}",
                                                   order_by=["version_number DESC"])
        requests = self._request_rows(open_requests)
        by_version: dict[str, list[dict[str, Any]]] = {}
        for request in requests:
            by_version.setdefault(request["version"], []).append(request)
        versions = [_version_row(v, self._run_name(v.run_id), by_version.get(v.version, []))
                    for v in found]
        page = self._client.get_activities(name, max_results=self._activity_limit)
        detail = {
            "name": model.name,
            "description": model.description,
            "user_id": model.user_id,
            "creation_timestamp": model.creation_timestamp,
            "last_updated_timestamp": model.last_updated_timestamp,
            "aliases": dict(model.aliases),
            "tags": dict(model.tags),
        }
        return detail, versions, requests, [_activity_row(a) for a in page], bool(page.token)

    def _run_name(self, run_id: str | None) -> str:
        """The source run's name (cached: a name seldom changes, and a version's run is
        read once rather than on every refresh)."""
        if not run_id:
            return ""
        if run_id not in self._run_names:
            if len(self._run_names) >= RUN_NAME_CACHE:
                self._run_names.clear()
            try:
                self._run_names[run_id] = self._client.service.get_run_info(run_id).run_name
            except LabtrackError:
                self._run_names[run_id] = ""  # deleted, or not readable: the id still shows
        return self._run_names[run_id]

    # -- actions -----------------------------------------------------------------------------

    def select_model(self, name: str | None) -> None:
        """Show ``name``'s versions, open requests and history (``None``: none). A model that
        cannot be read is refused and the selection stays as it was."""
        previous, previous_limit = self.selected, self._activity_limit
        self._activity_limit = ACTIVITY_PAGE
        self.selected = name or ""
        try:
            self._act(self._load, lambda _: "", reload=False)
        except Exception:
            if self.selected != previous:
                self.selected, self._activity_limit = previous, previous_limit
                error_text, error_code = self.error, self.error_code
                try:
                    self._load()
                except Exception:
                    pass
                with self.hold_sync():
                    self.error, self.error_code = error_text, error_code
            raise

    def search(self, filter_string: str = "") -> None:
        """List the registered models matching ``filter_string`` (``""``: all)."""
        self.filter_string = filter_string or ""
        self._act(self._load, lambda _: "", reload=False)

    def more_activities(self) -> None:
        """Show older history too (another page of events)."""
        self._activity_limit = min(self._activity_limit + ACTIVITY_PAGE, MAX_ACTIVITIES)
        self._act(self._load, lambda _: "", reload=False)

    def _selected_model(self) -> str:
        if not self.selected:
            error = InvalidParameterValue("Select a registered model first.")
            self._show_error(error)
            raise error
        return self.selected

    def request_transition(self, version: str | int, stage: str,
                           comment: str = "") -> TransitionRequest:
        """Ask for ``version`` of the selected model to move to ``stage``."""
        name = self._selected_model()
        return self._act(
            lambda: self._client.request_transition(name, str(version), stage,
                                                    comment or None),
            lambda request: (f"Requested a move of version {request.version} to "
                             f"{request.to_stage} (request {request.id})."))

    def comment(self, version: str | int, text: str):
        """Comment on ``version`` of the selected model."""
        name = self._selected_model()
        return self._act(
            lambda: self._client.create_comment(name, str(version), text),
            lambda created: f"Commented on version {created.version}.")

    # -- without a kernel --------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        parts = [self._error_html(), html_table(
            ["Name", "Latest Version", "Staging", "Production", "Open requests",
             "Last modified"],
            [(m["name"], m["latest_version"], m["staging"], m["production"],
              m["pending"] or "", _local_time(m["last_updated_timestamp"]))
             for m in self.models],
            caption="labtrack registered models"
            + (f" matching {self.filter_string}" if self.filter_string else ""))]
        if self.model:
            name = self.model["name"]
            parts.append(html_table(
                ["Version", "Registered at", "Created by", "Stage", "Source run"],
                [(v["version"], _local_time(v["creation_timestamp"]), v["user_id"],
                  v["current_stage"], v["run_name"] or v["run_id"]) for v in self.versions],
                caption=f"{name}: versions"))
            if self.requests:
                parts.append(_requests_table(self.requests, f"{name}: open requests",
                                             with_model=False))
            parts.append(html_table(
                ["Time", "User", "Action", "Version", "From", "To", "Comment"],
                [(_local_time(a["creation_timestamp"]), a["user_id"], a["label"],
                  a["version"], a["from_stage"], a["to_stage"],
                  a["comment"] or a["system_comment"]) for a in self.activities],
                caption=f"{name}: history (newest first)"))
        data["text/html"] = "".join(parts)
        return data, metadata


class TransitionRequests(_RegistryWidget):
    """Open transition requests (of one model, or of every model the user can read), each
    with Approve / Reject / Cancel as the user may, a comment box and, when approving, the
    option to archive the versions currently in the target stage.

    :param client: the ``TrackingClient`` to read and act through (default: one for
        ``labtrack.get_tracking_uri()``); its user is who approves.
    :param name: only this registered model's requests.
    """

    _esm = STATIC / "transition_requests.js"

    name = traitlets.Unicode("").tag(sync=True)
    requests = traitlets.List().tag(sync=True)  # oldest first: the queue to work through

    def __init__(self, client: TrackingClient | None = None, name: str | None = None,
                 **kwargs):
        super().__init__(client, name=name or "", **kwargs)
        self.refresh()

    def _load(self) -> None:
        try:
            rows = self._request_rows(self._client.list_transition_requests(self.name or None))
        except Exception:
            self.requests = []
            raise
        self.requests = sorted(rows, key=lambda r: (r["creation_timestamp"], r["id"]))

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        caption = "labtrack open transition requests" + (f" for {self.name}"
                                                         if self.name else "")
        data["text/html"] = self._error_html() + _requests_table(self.requests, caption)
        return data, metadata
