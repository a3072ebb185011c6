"""``RestRegistryService``: ``RegistryService``'s methods over a labtrack server's REST API.

The ``user`` keyword every method takes is accepted for symmetry with the in-process service
and ignored: over HTTP the server knows who calls from the token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from labtrack.client.rest import RestTrackingService
from labtrack.entities import (
    Activity,
    Comment,
    DeliveryStatus,
    ModelPermission,
    ModelVersion,
    PagedList,
    PermissionLevel,
    RegisteredModel,
    TransitionRequest,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)

MLFLOW = "/api/2.0/mlflow"
LABTRACK = "/api/2.0/labtrack"


def _key_values(mapping: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"key": k, "value": str(v)} for k, v in (mapping or {}).items()]


def _delivery(data: dict) -> WebhookDelivery:
    return WebhookDelivery(
        id=data["id"], webhook_id=data["webhook_id"], event=WebhookEvent(data["event"]),
        status=DeliveryStatus(data["status"]), attempts=int(data["attempts"]),
        creation_timestamp=int(data["creation_timestamp"]),
        last_attempt_timestamp=data.get("last_attempt_timestamp"),
        response_status=data.get("response_status"), last_error=data.get("last_error"))


class RestRegistryService:
    def __init__(self, rest: RestTrackingService):
        self.rest = rest

    def _get(self, route, **params):
        return self.rest._get(route, **params)

    def _post(self, route, **body):
        return self.rest._post(route, **body)

    def _send(self, method, route, **body):
        return self.rest._call(method, route, body={k: v for k, v in body.items()
                                                    if v is not None})

    # -- registered models -------------------------------------------------------------------

    def create_registered_model(self, name, tags=None, description=None, *, user=None):
        data = self._post(f"{MLFLOW}/registered-models/create", name=name,
                          tags=_key_values(tags), description=description)
        return RegisteredModel.from_dict(data["registered_model"])

    def get_registered_model(self, name, *, user=None):
        data = self._get(f"{MLFLOW}/registered-models/get", name=name)
        return RegisteredModel.from_dict(data["registered_model"])

    def rename_registered_model(self, name, new_name, *, user=None):
        data = self._post(f"{MLFLOW}/registered-models/rename", name=name, new_name=new_name)
        return RegisteredModel.from_dict(data["registered_model"])

    def update_registered_model(self, name, description, *, user=None):
        data = self._send("PATCH", f"{MLFLOW}/registered-models/update", name=name,
                          description=description or "")
        return RegisteredModel.from_dict(data["registered_model"])

    def delete_registered_model(self, name, *, user=None):
        self._send("DELETE", f"{MLFLOW}/registered-models/delete", name=name)

    def search_registered_models(self, filter_string=None, max_results=100, order_by=None,
                                 page_token=None, *, user=None):
        data = self._get(f"{MLFLOW}/registered-models/search", filter=filter_string,
                         max_results=max_results, order_by=list(order_by or []) or None,
                         page_token=page_token)
        return PagedList([RegisteredModel.from_dict(m)
                          for m in data.get("registered_models", [])],
                         data.get("next_page_token"))

    def set_registered_model_tag(self, name, key, value, *, user=None):
        self._post(f"{MLFLOW}/registered-models/set-tag", name=name, key=key, value=value)

    def delete_registered_model_tag(self, name, key, *, user=None):
        self._send("DELETE", f"{MLFLOW}/registered-models/delete-tag", name=name, key=key)

    # -- versions ----------------------------------------------------------------------------

    def create_model_version(self, name, source, run_id=None, tags=None, run_link=None,
                             description=None, model_id=None, *, user=None):
        data = self._post(f"{MLFLOW}/model-versions/create", name=name, source=source,
                          run_id=run_id, tags=_key_values(tags), run_link=run_link,
                          description=description, model_id=model_id)
        return ModelVersion.from_dict(data["model_version"])

    def get_model_version(self, name, version, *, user=None):
        data = self._get(f"{MLFLOW}/model-versions/get", name=name, version=str(version))
        return ModelVersion.from_dict(data["model_version"])

    def update_model_version(self, name, version, description, *, user=None):
        data = self._send("PATCH", f"{MLFLOW}/model-versions/update", name=name,
                          version=str(version), description=description or "")
        return ModelVersion.from_dict(data["model_version"])

    def delete_model_version(self, name, version, *, user=None):
        self._send("DELETE", f"{MLFLOW}/model-versions/delete", name=name, version=str(version))

    def search_model_versions(self, filter_string=None, max_results=10000, order_by=None,
                              page_token=None, *, user=None):
        data = self._get(f"{MLFLOW}/model-versions/search", filter=filter_string,
                         max_results=max_results, order_by=list(order_by or []) or None,
                         page_token=page_token)
        return PagedList([ModelVersion.from_dict(v) for v in data.get("model_versions", [])],
                         data.get("next_page_token"))

    def set_model_version_tag(self, name, version, key, value, *, user=None):
        self._post(f"{MLFLOW}/model-versions/set-tag", name=name, version=str(version),
                   key=key, value=value)

    def delete_model_version_tag(self, name, version, key, *, user=None):
        self._send("DELETE", f"{MLFLOW}/model-versions/delete-tag", name=name,
                   version=str(version), key=key)

    def get_latest_versions(self, name, stages=None, *, user=None):
        data = self._post(f"{MLFLOW}/registered-models/get-latest-versions", name=name,
                          stages=list(stages or []))
        return [ModelVersion.from_dict(v) for v in data.get("model_versions", [])]

    def get_model_version_download_uri(self, name, version, *, user=None):
        return self._get(f"{MLFLOW}/model-versions/get-download-uri", name=name,
                         version=str(version))["artifact_uri"]

    def set_alias(self, name, alias, version, *, user=None):
        self._post(f"{MLFLOW}/registered-models/alias", name=name, alias=alias,
                   version=str(version))

    def delete_alias(self, name, alias, *, user=None):
        self._send("DELETE", f"{MLFLOW}/registered-models/alias", name=name, alias=alias)

    def get_model_version_by_alias(self, name, alias, *, user=None):
        data = self._get(f"{MLFLOW}/registered-models/alias", name=name, alias=alias)
        return ModelVersion.from_dict(data["model_version"])

    def transition_stage(self, name, version, stage, archive_existing_versions=False,
                         comment=None, *, user=None):
        data = self._post(f"{MLFLOW}/databricks/model-versions/transition-stage", name=name,
                          version=str(version), stage=str(stage),
                          archive_existing_versions=archive_existing_versions, comment=comment)
        return ModelVersion.from_dict(data["model_version_databricks"])

    # -- requests, comments, activities ------------------------------------------------------

    def create_transition_request(self, name, version, stage, comment=None, *, user=None):
        data = self._post(f"{MLFLOW}/transition-requests/create", name=name,
                          version=str(version), stage=str(stage), comment=comment)
        return TransitionRequest.from_dict(data["request"])

    def approve_transition_request(self, name, version, stage,
                                   archive_existing_versions=False, comment=None,
                                   request_id=None, *, user=None):
        data = self._post(f"{MLFLOW}/transition-requests/approve", name=name,
                          version=str(version), stage=str(stage),
                          archive_existing_versions=archive_existing_versions,
                          comment=comment, request_id=request_id)
        return Activity.from_dict(data["activity"])

    def reject_transition_request(self, name, version, stage, comment=None, request_id=None,
                                  *, user=None):
        data = self._post(f"{MLFLOW}/transition-requests/reject", name=name,
                          version=str(version), stage=str(stage), comment=comment,
                          request_id=request_id)
        return Activity.from_dict(data["activity"])

    def cancel_transition_request(self, name, version, stage, creator=None, comment=None,
                                  request_id=None, *, user=None):
        data = self._send("DELETE", f"{MLFLOW}/transition-requests/delete", name=name,
                          version=str(version), stage=str(stage), creator=creator,
                          comment=comment, request_id=request_id)
        return Activity.from_dict(data["activity"])

    def list_transition_requests(self, name=None, version=None, *, user=None):
        data = self._get(f"{MLFLOW}/transition-requests/list", name=name,
                         version=None if version is None else str(version))
        return [TransitionRequest.from_dict(r) for r in data.get("requests", [])]

    def create_comment(self, name, version, comment, *, user=None):
        data = self._post(f"{MLFLOW}/comments/create", name=name, version=str(version),
                          comment=comment)
        return Comment.from_dict(data["comment"])

    def update_comment(self, comment_id, comment, *, user=None):
        data = self._send("PATCH", f"{MLFLOW}/comments/update", id=str(comment_id),
                          comment=comment)
        return Comment.from_dict(data["comment"])

    def delete_comment(self, comment_id, *, user=None):
        self._send("DELETE", f"{MLFLOW}/comments/delete", id=str(comment_id))

    def list_comments(self, name, version, *, user=None):
        data = self._get(f"{LABTRACK}/comments/list", name=name, version=str(version))
        return [Comment.from_dict(c) for c in data.get("comments", [])]

    def list_activities(self, name, version=None, max_results=100, page_token=None, *,
                        user=None):
        data = self._get(f"{LABTRACK}/activities/list", name=name,
                         version=None if version is None else str(version),
                         max_results=max_results, page_token=page_token)
        return PagedList([Activity.from_dict(a) for a in data.get("activities", [])],
                         data.get("next_page_token"))

    # -- permissions -------------------------------------------------------------------------

    def _model_id(self, name) -> str:
        return self.get_registered_model(name).id

    def get_permissions(self, name, *, user=None):
        data = self._get(f"/api/2.0/permissions/registered-models/{self._model_id(name)}")
        return [ModelPermission(entry["user_name"], PermissionLevel(
            entry["all_permissions"][0]["permission_level"]))
            for entry in data.get("access_control_list", [])]

    def set_permissions(self, name, entries: Sequence[tuple[str, str]], replace_all=False, *,
                        user=None):
        self._send("PUT" if replace_all else "PATCH",
                   f"/api/2.0/permissions/registered-models/{self._model_id(name)}",
                   access_control_list=[{"user_name": u, "permission_level": str(level)}
                                        for u, level in entries])
        return self.get_permissions(name)

    # -- webhooks ----------------------------------------------------------------------------

    def create_webhook(self, events, url, model_name=None, secret=None, status="ACTIVE",
                       description=None, enable_ssl_verification=True, *, user=None):
        spec = {"url": url, "enable_ssl_verification": enable_ssl_verification}
        if secret:
            spec["secret"] = secret
        data = self._post(f"{MLFLOW}/registry-webhooks/create", events=list(events),
                          model_name=model_name, status=status, description=description,
                          http_url_spec=spec)
        return Webhook.from_dict(data["webhook"])

    def list_webhooks(self, model_name=None, *, user=None):
        data = self._get(f"{MLFLOW}/registry-webhooks/list", model_name=model_name)
        return [Webhook.from_dict(w) for w in data.get("webhooks", [])]

    def update_webhook(self, webhook_id, *, user=None, events=None, url=None, secret=None,
                       status=None, description=None, enable_ssl_verification=None):
        spec = {k: v for k, v in (("url", url), ("secret", secret),
                                  ("enable_ssl_verification", enable_ssl_verification))
                if v is not None}
        data = self._send("PATCH", f"{MLFLOW}/registry-webhooks/update", id=webhook_id,
                          events=None if events is None else list(events), status=status,
                          description=description, http_url_spec=spec or None)
        return Webhook.from_dict(data["webhook"])

    def delete_webhook(self, webhook_id, *, user=None):
        self._send("DELETE", f"{MLFLOW}/registry-webhooks/delete", id=webhook_id)

    def test_webhook(self, webhook_id, event=None, *, user=None):
        data = self._post(f"{MLFLOW}/registry-webhooks/test", id=webhook_id, event=event)
        return data["webhook"]["status_code"], data["webhook"]["body"]

    def list_deliveries(self, webhook_id, max_results=50, *, user=None):
        data = self._get(f"{LABTRACK}/registry-webhooks/deliveries", id=webhook_id,
                         max_results=max_results)
        return [_delivery(d) for d in data.get("deliveries", [])]
