"""The registry half of ``SqlStore`` (mixed into it): models, versions, aliases, requests,
the audit trail, comments, permissions and webhooks, in the SQL both SQLite and PostgreSQL
speak (see ``labtrack.store.sql``)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from labtrack.entities import (
    Activity,
    ActivityType,
    Comment,
    DeliveryStatus,
    ModelPermission,
    ModelStage,
    ModelVersion,
    ModelVersionStatus,
    PermissionLevel,
    RegisteredModel,
    RequestStatus,
    TransitionRequest,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
    WebhookStatus,
)
from labtrack.errors import ResourceAlreadyExists, ResourceDoesNotExist
from labtrack.store.query import Comparison, Entity
from labtrack.store.registry import (
    ActivityRecord,
    RegistryStore,
    RequestNotOpen,
    TransitionOutcome,
)
from labtrack.store.sql_query import Dialect, value_condition

_VERSION_SELECT = (
    "SELECT m.name, v.version, v.creation_time, v.last_updated_time, v.user_id, "
    "v.current_stage, v.source, v.status, v.description, v.run_id, v.run_link, "
    "v.status_message, v.logged_model_id, v.model_id FROM model_versions v "
    "JOIN registered_models m ON m.model_id = v.model_id"
)
_REQUEST_SELECT = (
    "SELECT r.request_id, m.name, r.version, r.to_stage, r.user_id, r.creation_time, r.status, "
    "r.comment, r.resolved_by, r.resolved_time FROM transition_requests r "
    "JOIN registered_models m ON m.model_id = r.model_id"
)
_COMMENT_SELECT = (
    "SELECT c.comment_id, m.name, c.version, c.user_id, c.comment, c.creation_time, "
    "c.last_updated_time FROM comments c JOIN registered_models m ON m.model_id = c.model_id"
)
_WEBHOOK_SELECT = (
    "SELECT w.webhook_id, w.events, w.url, w.status, w.creation_time, w.last_updated_time, "
    "m.name, w.description, w.enable_ssl_verification, w.secret IS NOT NULL "
    "FROM webhooks w LEFT JOIN registered_models m ON m.model_id = w.model_id"
)
_MODEL_COLUMNS = {
    "name": "m.name",
    "creation_timestamp": "m.creation_time",
    "last_updated_timestamp": "m.last_updated_time",
}
_VERSION_COLUMNS = {
    "name": "m.name",
    "version_number": "v.version",
    "run_id": "v.run_id",
    "source_path": "v.source",
    "creation_timestamp": "v.creation_time",
    "last_updated_timestamp": "v.last_updated_time",
    "current_stage": "v.current_stage",
    "user_id": "v.user_id",
}


def _stage(value: str | None) -> ModelStage | None:
    return None if value is None else ModelStage(value)


def _version_entity(row, tags: dict[str, str], aliases: tuple[str, ...]) -> ModelVersion:
    return ModelVersion(
        name=row[0],
        version=str(row[1]),
        creation_timestamp=row[2],
        last_updated_timestamp=row[3],
        user_id=row[4],
        current_stage=ModelStage(row[5]),
        source=row[6],
        status=ModelVersionStatus(row[7]),
        description=row[8],
        run_id=row[9],
        run_link=row[10],
        status_message=row[11],
        model_id=row[12],
        tags=tags,
        aliases=aliases,
    )


def _request_entity(row) -> TransitionRequest:
    return TransitionRequest(
        id=str(row[0]), model_name=row[1], version=str(row[2]), to_stage=ModelStage(row[3]),
        user_id=row[4], creation_timestamp=row[5], status=RequestStatus(row[6]),
        comment=row[7], resolved_by=row[8], resolved_timestamp=row[9],
    )


def _comment_entity(row) -> Comment:
    return Comment(id=str(row[0]), model_name=row[1], version=str(row[2]), user_id=row[3],
                   comment=row[4], creation_timestamp=row[5], last_updated_timestamp=row[6])


def _webhook_entity(row) -> Webhook:
    return Webhook(
        id=row[0], events=tuple(WebhookEvent(e) for e in json.loads(row[1])), url=row[2],
        status=WebhookStatus(row[3]), creation_timestamp=row[4], last_updated_timestamp=row[5],
        model_name=row[6], description=row[7], enable_ssl_verification=bool(row[8]),
        has_secret=bool(row[9]),
    )


class SqlRegistryMixin(RegistryStore):
    """Registry persistence for ``SqlStore`` (which provides connections and the dialect).

    Every write starts by looking the model up with ``_model_id``, which also locks the
    model's row where writers run concurrently: writes to one model take turns, so version
    numbers stay unique and contiguous and a transition never interleaves with another."""

    # -- helpers -----------------------------------------------------------------------------

    def _model_id(self, conn, name: str) -> int:
        row = conn.execute("SELECT model_id FROM registered_models WHERE name = ?"
                           + self.dialect.lock_rows, (name,)).fetchone()
        if row is None:
            raise ResourceDoesNotExist(f"Registered Model with name={name} not found")
        return row[0]

    @staticmethod
    def _activities(conn, model_id: int, name: str, time_ms: int,
                    records: Sequence[ActivityRecord]) -> None:
        conn.executemany(
            "INSERT INTO activities (model_id, model_name, version, activity_type, user_id, "
            "creation_time, from_stage, to_stage, comment, system_comment) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(model_id, name, None if r.version is None else int(r.version),
              str(r.activity_type), r.user_id, time_ms,
              None if r.from_stage is None else str(r.from_stage),
              None if r.to_stage is None else str(r.to_stage), r.comment, r.system_comment)
             for r in records],
        )

    def _touch_model(self, conn, model_id: int, time_ms: int) -> None:
        conn.execute("UPDATE registered_models SET last_updated_time = ? WHERE model_id = ?",
                     (time_ms, model_id))

    def _versions(self, conn, where: str, params: Sequence) -> list[ModelVersion]:
        rows = conn.execute(f"{_VERSION_SELECT} WHERE {where}", params).fetchall()
        if not rows:
            return []
        tags: dict[tuple[int, int], dict[str, str]] = {(r[13], r[1]): {} for r in rows}
        aliases: dict[tuple[int, int], list[str]] = {(r[13], r[1]): [] for r in rows}
        # Rows of the listed models with the listed numbers: a superset of the wanted
        # (model, version) pairs, narrowed here rather than in dialect-specific SQL.
        pairs = (self._list({r[13] for r in rows}), self._list({r[1] for r in rows}))
        for model_id, version, key, value in conn.execute(
            "SELECT t.model_id, t.version, t.key, t.value FROM model_version_tags t "
            f"WHERE {self._in('t.model_id')} AND {self._in('t.version')} ORDER BY t.key",
            pairs,
        ):
            if (model_id, version) in tags:
                tags[(model_id, version)][key] = value
        for model_id, version, alias in conn.execute(
            "SELECT a.model_id, a.version, a.alias FROM model_aliases a "
            f"WHERE {self._in('a.model_id')} AND {self._in('a.version')} ORDER BY a.alias",
            pairs,
        ):
            if (model_id, version) in aliases:
                aliases[(model_id, version)].append(alias)
        return [_version_entity(row, tags[(row[13], row[1])], tuple(aliases[(row[13], row[1])]))
                for row in rows]

    def _models(self, conn, where: str, params: Sequence) -> list[RegisteredModel]:
        rows = conn.execute(
            "SELECT m.model_id, m.name, m.creation_time, m.last_updated_time, m.user_id, "
            f"m.description FROM registered_models m WHERE {where}",
            params,
        ).fetchall()
        if not rows:
            return []
        ids = self._list([row[0] for row in rows])
        tags: dict[int, dict[str, str]] = {row[0]: {} for row in rows}
        aliases: dict[int, dict[str, str]] = {row[0]: {} for row in rows}
        for model_id, key, value in conn.execute(
            "SELECT model_id, key, value FROM registered_model_tags WHERE "
            f"{self._in('model_id')} ORDER BY key", (ids,)):
            tags[model_id][key] = value
        for model_id, alias, version in conn.execute(
            "SELECT model_id, alias, version FROM model_aliases WHERE "
            f"{self._in('model_id')} ORDER BY alias", (ids,)):
            aliases[model_id][alias] = str(version)
        latest = self._versions(
            conn,
            f"{self._in('v.model_id')} AND v.version = (SELECT max(o.version)"
            " FROM model_versions o WHERE o.model_id = v.model_id AND "
            "o.current_stage = v.current_stage) ORDER BY v.model_id, v.version",
            (ids,),
        )
        by_model: dict[str, list[ModelVersion]] = {}
        for version in latest:
            by_model.setdefault(version.name, []).append(version)
        return [
            RegisteredModel(
                name=row[1], creation_timestamp=row[2], last_updated_timestamp=row[3],
                user_id=row[4], description=row[5],
                latest_versions=tuple(by_model.get(row[1], ())), tags=tags[row[0]],
                aliases=aliases[row[0]], id=str(row[0]),
            )
            for row in rows
        ]

    # -- registered models -------------------------------------------------------------------

    def create_registered_model(self, name, user_id, description, tags, time_ms, activity):
        with self._write() as conn:
            try:
                with self._savepoint(conn):
                    model_id = conn.execute(
                        "INSERT INTO registered_models (name, creation_time, "
                        "last_updated_time, description, user_id) VALUES (?, ?, ?, ?, ?) "
                        "RETURNING model_id",
                        (name, time_ms, time_ms, description, user_id),
                    ).fetchone()[0]
            except self.integrity_errors:
                raise ResourceAlreadyExists(
                    f"Registered Model (name={name}) already exists."
                ) from None
            conn.executemany(
                "INSERT INTO registered_model_tags (model_id, key, value) VALUES (?, ?, ?)",
                [(model_id, k, v) for k, v in tags.items()],
            )
            self._activities(conn, model_id, name, time_ms, [activity])
            return self._models(conn, "m.model_id = ?", (model_id,))[0]

    def get_registered_model(self, name):
        with self._read() as conn:
            found = self._models(conn, "m.name = ?", (name,))
        return found[0] if found else None

    def get_model_id(self, name):
        row = self._fetchone("SELECT model_id FROM registered_models WHERE name = ?", (name,))
        return None if row is None else str(row[0])

    def get_model_name(self, model_id):
        key = _int64(model_id)
        if key is None:
            return None
        row = self._fetchone("SELECT name FROM registered_models WHERE model_id = ?", (key,))
        return None if row is None else row[0]

    def rename_registered_model(self, name, new_name, time_ms, activity):
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            try:
                with self._savepoint(conn):
                    conn.execute("UPDATE registered_models SET name = ?, last_updated_time = ? "
                                 "WHERE model_id = ?", (new_name, time_ms, model_id))
            except self.integrity_errors:
                raise ResourceAlreadyExists(
                    f"Registered Model (name={new_name}) already exists."
                ) from None
            self._activities(conn, model_id, new_name, time_ms, [activity])

    def update_registered_model(self, name, description, time_ms, activity):
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            conn.execute("UPDATE registered_models SET description = ?, last_updated_time = ? "
                         "WHERE model_id = ?", (description, time_ms, model_id))
            self._activities(conn, model_id, name, time_ms, [activity])

    def delete_registered_model(self, name):
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            # Versions first: their tags, aliases, requests and comments cascade from them.
            conn.execute("DELETE FROM model_versions WHERE model_id = ?", (model_id,))
            conn.execute("DELETE FROM registered_models WHERE model_id = ?", (model_id,))

    def search_registered_models(self, comparisons, order_by, max_results, offset):
        where, params = ["1 = 1"], []
        for comparison in comparisons:
            sql, values = _condition(self.dialect, comparison, _MODEL_COLUMNS,
                                     "registered_model_tags", "x.model_id = m.model_id")
            where.append(sql)
            params.extend(values)
        order = [f"{_MODEL_COLUMNS[t.key]} {'ASC' if t.ascending else 'DESC'}" for t in order_by]
        order.append("m.name ASC")
        query = f"{' AND '.join(where)} ORDER BY {', '.join(order)} LIMIT ? OFFSET ?"
        with self._read() as conn:
            return self._models(conn, query, (*params, max_results, offset))

    def set_registered_model_tag(self, name, key, value, time_ms):
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            conn.execute(
                "INSERT INTO registered_model_tags (model_id, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                (model_id, key, value))
            self._touch_model(conn, model_id, time_ms)

    def delete_registered_model_tag(self, name, key):
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            cursor = conn.execute(
                "DELETE FROM registered_model_tags WHERE model_id = ? AND key = ?",
                (model_id, key))
        return cursor.rowcount > 0

    # -- versions ----------------------------------------------------------------------------

    def create_model_version(self, name, source, run_id, run_link, description, user_id, tags,
                             logged_model_id, time_ms):
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            version = conn.execute(
                "UPDATE registered_models SET next_version = next_version + 1 "
                "WHERE model_id = ? RETURNING next_version - 1", (model_id,)).fetchone()[0]
            conn.execute(
                "INSERT INTO model_versions (model_id, version, creation_time, "
                "last_updated_time, description, user_id, current_stage, source, run_id, "
                "run_link, status, logged_model_id) "
                "VALUES (?, ?, ?, ?, ?, ?, 'None', ?, ?, ?, 'READY', ?)",
                (model_id, version, time_ms, time_ms, description, user_id, source, run_id,
                 run_link, logged_model_id),
            )
            conn.executemany(
                "INSERT INTO model_version_tags (model_id, version, key, value) "
                "VALUES (?, ?, ?, ?)", [(model_id, version, k, v) for k, v in tags.items()])
            self._touch_model(conn, model_id, time_ms)
            self._activities(conn, model_id, name, time_ms, [ActivityRecord(
                ActivityType.MODEL_VERSION_CREATED, user_id, str(version),
                to_stage=ModelStage.NONE, system_comment=f"Registered from {source}")])
            return self._versions(conn, "v.model_id = ? AND v.version = ?",
                                  (model_id, version))[0]

    def get_model_version(self, name, version):
        try:
            number = int(version)
        except (TypeError, ValueError):
            return None
        with self._read() as conn:
            found = self._versions(conn, "m.name = ? AND v.version = ?", (name, number))
        return found[0] if found else None

    def update_model_version(self, name, version, description, time_ms, activity):
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            conn.execute("UPDATE model_versions SET description = ?, last_updated_time = ? "
                         "WHERE model_id = ? AND version = ?",
                         (description, time_ms, model_id, int(version)))
            self._activities(conn, model_id, name, time_ms, [activity])

    def delete_model_version(self, name, version, time_ms, activity):
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            conn.execute("DELETE FROM model_versions WHERE model_id = ? AND version = ?",
                         (model_id, int(version)))
            self._touch_model(conn, model_id, time_ms)
            self._activities(conn, model_id, name, time_ms, [activity])

    def search_model_versions(self, comparisons, order_by, max_results, offset):
        where, params = ["1 = 1"], []
        for comparison in comparisons:
            sql, values = _condition(self.dialect, comparison, _VERSION_COLUMNS,
                                     "model_version_tags",
                                     "x.model_id = v.model_id AND x.version = v.version")
            where.append(sql)
            params.extend(values)
        order = [f"{_VERSION_COLUMNS[t.key]} {'ASC' if t.ascending else 'DESC'}"
                 for t in order_by] or ["v.last_updated_time DESC"]
        order += ["m.name ASC", "v.version DESC"]
        query = f"{' AND '.join(where)} ORDER BY {', '.join(order)} LIMIT ? OFFSET ?"
        with self._read() as conn:
            return self._versions(conn, query, (*params, max_results, offset))

    def set_model_version_tag(self, name, version, key, value, time_ms):
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            conn.execute(
                "INSERT INTO model_version_tags (model_id, version, key, value) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (model_id, version, key) "
                "DO UPDATE SET value = excluded.value", (model_id, int(version), key, value))
            conn.execute("UPDATE model_versions SET last_updated_time = ? "
                         "WHERE model_id = ? AND version = ?", (time_ms, model_id, int(version)))

    def delete_model_version_tag(self, name, version, key):
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            cursor = conn.execute(
                "DELETE FROM model_version_tags WHERE model_id = ? AND version = ? AND key = ?",
                (model_id, int(version), key))
        return cursor.rowcount > 0

    def latest_versions(self, name, stages):
        wanted = self._list([str(s) for s in (stages or list(ModelStage))])
        with self._read() as conn:
            return self._versions(
                conn,
                f"m.name = ? AND {self._in('v.current_stage')} AND "
                "v.version = (SELECT max(o.version) FROM model_versions o WHERE "
                "o.model_id = v.model_id AND o.current_stage = v.current_stage) "
                "ORDER BY v.version",
                (name, wanted),
            )

    def set_alias(self, name, alias, version, time_ms, activity):
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            previous = conn.execute(
                "SELECT version FROM model_aliases WHERE model_id = ? AND alias = ?",
                (model_id, alias)).fetchone()
            conn.execute(
                "INSERT INTO model_aliases (model_id, alias, version) VALUES (?, ?, ?) "
                "ON CONFLICT (model_id, alias) DO UPDATE SET version = excluded.version",
                (model_id, alias, int(version)))
            self._touch_model(conn, model_id, time_ms)
            self._activities(conn, model_id, name, time_ms, [activity])
        return None if previous is None else str(previous[0])

    def delete_alias(self, name, alias, time_ms, activity):
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            cursor = conn.execute("DELETE FROM model_aliases WHERE model_id = ? AND alias = ?",
                                  (model_id, alias))
            if cursor.rowcount:
                self._touch_model(conn, model_id, time_ms)
                self._activities(conn, model_id, name, time_ms, [activity])
        return cursor.rowcount > 0

    def version_for_alias(self, name, alias):
        row = self._fetchone(
            "SELECT a.version FROM model_aliases a JOIN registered_models m USING (model_id) "
            "WHERE m.name = ? AND a.alias = ?", (name, alias))
        return None if row is None else str(row[0])

    # -- stages and requests -----------------------------------------------------------------

    def transition_stage(self, name, version, to_stage, archive_existing, time_ms, activities,
                         resolve_request=None):
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            number = int(version)
            if resolve_request is not None:
                self._close_request(conn, resolve_request[0], resolve_request[1],
                                    resolve_request[2], time_ms)
            from_stage = ModelStage(conn.execute(
                "SELECT current_stage FROM model_versions WHERE model_id = ? AND version = ?",
                (model_id, number)).fetchone()[0])
            conn.execute(
                "UPDATE model_versions SET current_stage = ?, last_updated_time = ? "
                "WHERE model_id = ? AND version = ?",
                (str(to_stage), time_ms, model_id, number))
            archived_numbers: list[int] = []
            records = list(activities)
            if archive_existing and to_stage in (ModelStage.STAGING, ModelStage.PRODUCTION):
                archived_numbers = [row[0] for row in conn.execute(
                    "SELECT version FROM model_versions WHERE model_id = ? AND "
                    "current_stage = ? AND version != ? ORDER BY version",
                    (model_id, str(to_stage), number))]
                conn.execute(
                    "UPDATE model_versions SET current_stage = 'Archived', last_updated_time = ? "
                    "WHERE model_id = ? AND current_stage = ? AND version != ?",
                    (time_ms, model_id, str(to_stage), number))
                user = activities[0].user_id if activities else ""
                records += [ActivityRecord(
                    ActivityType.SYSTEM_TRANSITION, user, str(n), to_stage, ModelStage.ARCHIVED,
                    system_comment=f"Archived because version {version} moved to {to_stage}.")
                    for n in archived_numbers]
            self._touch_model(conn, model_id, time_ms)
            self._activities(conn, model_id, name, time_ms, records)
            versions = self._versions(
                conn, f"v.model_id = ? AND {self._in('v.version')} ORDER BY v.version",
                (model_id, self._list([number, *archived_numbers])))
        moved = next(v for v in versions if v.version == str(number))
        return TransitionOutcome(moved, from_stage,
                                 tuple(v for v in versions if v.version != str(number)))

    def _close_request(self, conn, request_id, status, user_id, time_ms) -> None:
        # Locked: of two approvals of one request, the second must see the first.
        lock = self.dialect.lock_rows and f"{self.dialect.lock_rows} OF r"
        row = conn.execute(f"{_REQUEST_SELECT} WHERE r.request_id = ?{lock}",
                           (_int64(request_id),)).fetchone()
        if row is None:
            raise ResourceDoesNotExist(f"Transition request {request_id} not found.")
        request = _request_entity(row)
        if request.status != RequestStatus.OPEN:
            raise RequestNotOpen(request)
        conn.execute(
            "UPDATE transition_requests SET status = ?, resolved_by = ?, resolved_time = ? "
            "WHERE request_id = ?", (str(status), user_id, time_ms, int(request_id)))

    def create_transition_request(self, name, version, to_stage, user_id, comment, time_ms):
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            from_stage = conn.execute(
                "SELECT current_stage FROM model_versions WHERE model_id = ? AND version = ?",
                (model_id, int(version))).fetchone()[0]
            request_id = conn.execute(
                "INSERT INTO transition_requests (model_id, version, to_stage, user_id, "
                "comment, creation_time) VALUES (?, ?, ?, ?, ?, ?) "
                "RETURNING request_id",
                (model_id, int(version), str(to_stage), user_id, comment, time_ms)).fetchone()[0]
            self._activities(conn, model_id, name, time_ms, [ActivityRecord(
                ActivityType.REQUESTED_TRANSITION, user_id, str(version),
                ModelStage(from_stage), to_stage, comment)])
            row = conn.execute(f"{_REQUEST_SELECT} WHERE r.request_id = ?",
                               (request_id,)).fetchone()
        return _request_entity(row)

    def get_transition_request(self, request_id):
        key = _int64(request_id)
        if key is None:
            return None
        row = self._fetchone(f"{_REQUEST_SELECT} WHERE r.request_id = ?", (key,))
        return None if row is None else _request_entity(row)

    def list_transition_requests(self, name=None, version=None, status=RequestStatus.OPEN):
        where, params = ["1 = 1"], []
        if name is not None:
            where.append("m.name = ?")
            params.append(name)
        if version is not None:
            where.append("r.version = ?")
            params.append(int(version))
        if status is not None:
            where.append("r.status = ?")
            params.append(str(status))
        rows = self._fetchall(
            f"{_REQUEST_SELECT} WHERE {' AND '.join(where)} ORDER BY r.request_id", params)
        return [_request_entity(row) for row in rows]

    def resolve_transition_request(self, request_id, status, user_id, time_ms, activity):
        with self._write() as conn:
            self._close_request(conn, request_id, status, user_id, time_ms)
            request = _request_entity(conn.execute(
                f"{_REQUEST_SELECT} WHERE r.request_id = ?", (int(request_id),)).fetchone())
            model_id = self._model_id(conn, request.model_name)
            self._activities(conn, model_id, request.model_name, time_ms, [activity])
        return request

    # -- audit trail and comments ------------------------------------------------------------

    def list_activities(self, name, version, max_results, offset):
        model_id = self.get_model_id(name)
        if model_id is None:
            return []
        where, params = "model_id = ?", [int(model_id)]
        if version is not None:
            where += " AND version = ?"
            params.append(int(version))
        rows = self._fetchall(
            "SELECT activity_id, model_name, version, activity_type, user_id, creation_time, "
            f"from_stage, to_stage, comment, system_comment FROM activities WHERE {where} "
            "ORDER BY activity_id DESC LIMIT ? OFFSET ?", (*params, max_results, offset))
        return [
            Activity(id=str(r[0]), model_name=r[1], version=None if r[2] is None else str(r[2]),
                     activity_type=ActivityType(r[3]), user_id=r[4], creation_timestamp=r[5],
                     from_stage=_stage(r[6]), to_stage=_stage(r[7]), comment=r[8],
                     system_comment=r[9])
            for r in rows
        ]

    def create_comment(self, name, version, user_id, comment, time_ms):
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            comment_id = conn.execute(
                "INSERT INTO comments (model_id, version, user_id, comment, creation_time, "
                "last_updated_time) VALUES (?, ?, ?, ?, ?, ?) "
                "RETURNING comment_id",
                (model_id, int(version), user_id, comment, time_ms, time_ms)).fetchone()[0]
            self._activities(conn, model_id, name, time_ms, [ActivityRecord(
                ActivityType.NEW_COMMENT, user_id, str(version), comment=comment)])
            row = conn.execute(f"{_COMMENT_SELECT} WHERE c.comment_id = ?",
                               (comment_id,)).fetchone()
        return _comment_entity(row)

    def get_comment(self, comment_id):
        key = _int64(comment_id)
        if key is None:
            return None
        row = self._fetchone(f"{_COMMENT_SELECT} WHERE c.comment_id = ?", (key,))
        return None if row is None else _comment_entity(row)

    def update_comment(self, comment_id, comment, time_ms, activity):
        with self._write() as conn:
            conn.execute("UPDATE comments SET comment = ?, last_updated_time = ? "
                         "WHERE comment_id = ?", (comment, time_ms, int(comment_id)))
            row = conn.execute(f"{_COMMENT_SELECT} WHERE c.comment_id = ?",
                               (int(comment_id),)).fetchone()
            updated = _comment_entity(row)
            self._activities(conn, self._model_id(conn, updated.model_name),
                             updated.model_name, time_ms, [activity])
        return updated

    def delete_comment(self, comment_id, time_ms, activity):
        with self._write() as conn:
            row = conn.execute(f"{_COMMENT_SELECT} WHERE c.comment_id = ?",
                               (int(comment_id),)).fetchone()
            if row is None:
                return
            existing = _comment_entity(row)
            conn.execute("DELETE FROM comments WHERE comment_id = ?", (int(comment_id),))
            self._activities(conn, self._model_id(conn, existing.model_name),
                             existing.model_name, time_ms, [activity])

    def list_comments(self, name, version):
        rows = self._fetchall(
            f"{_COMMENT_SELECT} WHERE m.name = ? AND c.version = ? ORDER BY c.comment_id",
            (name, int(version)))
        return [_comment_entity(row) for row in rows]

    # -- permissions -------------------------------------------------------------------------

    def get_permissions(self, name):
        rows = self._fetchall(
            "SELECT p.user_name, p.level FROM model_permissions p JOIN registered_models m "
            "USING (model_id) WHERE m.name = ? ORDER BY p.user_name", (name,))
        return [ModelPermission(user, PermissionLevel(level)) for user, level in rows]

    def set_permissions(self, name, entries, replace, time_ms, activity):
        with self._write() as conn:
            model_id = self._model_id(conn, name)
            if replace:
                conn.execute("DELETE FROM model_permissions WHERE model_id = ?", (model_id,))
            conn.executemany(
                "INSERT INTO model_permissions (model_id, user_name, level) VALUES (?, ?, ?) "
                "ON CONFLICT (model_id, user_name) DO UPDATE SET level = excluded.level",
                [(model_id, e.user_name, str(e.permission_level)) for e in entries])
            self._activities(conn, model_id, name, time_ms, [activity])

    # -- webhooks ----------------------------------------------------------------------------

    def create_webhook(self, webhook_id, model_name, events, url, secret, status, description,
                       enable_ssl_verification, time_ms):
        with self._write() as conn:
            model_id = None if model_name is None else self._model_id(conn, model_name)
            conn.execute(
                "INSERT INTO webhooks (webhook_id, model_id, events, url, secret, status, "
                "description, enable_ssl_verification, creation_time, last_updated_time) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (webhook_id, model_id, json.dumps([str(e) for e in events]), url, secret,
                 str(status), description, int(enable_ssl_verification), time_ms, time_ms))
        return self.get_webhook(webhook_id)

    def get_webhook(self, webhook_id):
        row = self._fetchone(f"{_WEBHOOK_SELECT} WHERE w.webhook_id = ?", (webhook_id,))
        return None if row is None else _webhook_entity(row)

    def get_webhook_secret(self, webhook_id):
        row = self._fetchone("SELECT secret FROM webhooks WHERE webhook_id = ?", (webhook_id,))
        return None if row is None else row[0]

    def list_webhooks(self, model_name, registry_wide):
        if registry_wide:
            rows = self._fetchall(
                f"{_WEBHOOK_SELECT} WHERE w.model_id IS NULL ORDER BY w.creation_time")
        else:
            rows = self._fetchall(
                f"{_WEBHOOK_SELECT} WHERE m.name = ? ORDER BY w.creation_time", (model_name,))
        return [_webhook_entity(row) for row in rows]

    def update_webhook(self, webhook_id, time_ms, **changes):
        columns = {"events": lambda v: json.dumps([str(e) for e in v]), "url": str,
                   "secret": lambda v: v, "status": str, "description": str,
                   "enable_ssl_verification": int}
        assignments, params = ["last_updated_time = ?"], [time_ms]
        for key, value in changes.items():
            assignments.append(f"{key} = ?")
            params.append(columns[key](value))
        with self._write() as conn:
            conn.execute(f"UPDATE webhooks SET {', '.join(assignments)} WHERE webhook_id = ?",
                         (*params, webhook_id))
        return self.get_webhook(webhook_id)

    def delete_webhook(self, webhook_id):
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM webhooks WHERE webhook_id = ?", (webhook_id,))
        return cursor.rowcount > 0

    def webhooks_for_event(self, model_name, event):
        # A model has a handful of webhooks: their event lists (JSON) are matched here.
        rows = self._fetchall(
            f"{_WEBHOOK_SELECT} WHERE w.status = 'ACTIVE' AND (w.model_id IS NULL OR m.name = ?) "
            "ORDER BY w.creation_time", (model_name,))
        webhooks = [_webhook_entity(row) for row in rows]
        return [webhook for webhook in webhooks if event in webhook.events]

    def create_delivery(self, delivery_id, webhook_id, event, payload, time_ms,
                        claimed_by=None):
        with self._write() as conn:
            conn.execute(
                "INSERT INTO webhook_deliveries (delivery_id, webhook_id, event, payload, "
                "status, attempts, creation_time, claimed_by, claim_time) "
                "VALUES (?, ?, ?, ?, 'PENDING', 0, ?, ?, ?)",
                (delivery_id, webhook_id, str(event), payload, time_ms, claimed_by,
                 None if claimed_by is None else time_ms))

    def claim_delivery(self, delivery_id, claimed_by, time_ms, stale_before_ms):
        # One statement: of several processes claiming the same row, exactly one matches.
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE webhook_deliveries SET claimed_by = ?, claim_time = ? "
                "WHERE delivery_id = ? AND status = 'PENDING' "
                "AND (claimed_by IS NULL OR claimed_by = ? OR claim_time < ?)",
                (claimed_by, time_ms, delivery_id, claimed_by, stale_before_ms))
        return cursor.rowcount > 0

    def update_delivery(self, delivery_id, status, attempts, time_ms, response_status,
                        last_error):
        with self._write() as conn:
            conn.execute(
                "UPDATE webhook_deliveries SET status = ?, attempts = ?, last_attempt_time = ?, "
                "response_status = ?, last_error = ? WHERE delivery_id = ?",
                (str(status), attempts, time_ms, response_status, last_error, delivery_id))

    def _delivery_rows(self, where: str, params: Sequence):
        return self._fetchall(
            "SELECT delivery_id, webhook_id, event, status, attempts, creation_time, "
            "last_attempt_time, response_status, last_error, payload FROM webhook_deliveries "
            f"WHERE {where}", params)

    @staticmethod
    def _delivery_entity(row) -> WebhookDelivery:
        return WebhookDelivery(id=row[0], webhook_id=row[1], event=WebhookEvent(row[2]),
                               status=DeliveryStatus(row[3]), attempts=row[4],
                               creation_timestamp=row[5], last_attempt_timestamp=row[6],
                               response_status=row[7], last_error=row[8])

    def list_deliveries(self, webhook_id, max_results):
        rows = self._delivery_rows("webhook_id = ? ORDER BY creation_time DESC, rowid DESC "
                                   "LIMIT ?", (webhook_id, max_results))
        return [self._delivery_entity(row) for row in rows]

    def pending_deliveries(self, stale_before_ms):
        rows = self._delivery_rows(
            "status = 'PENDING' AND (claimed_by IS NULL OR claim_time < ?) "
            "ORDER BY creation_time", (stale_before_ms,))
        return [(self._delivery_entity(row), row[9]) for row in rows]


def _int64(value: object) -> int | None:
    """An id given by a caller as an int64, or None when it cannot be one of ours."""
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def _condition(dialect: Dialect, comparison: Comparison, columns: dict[str, str],
               tag_table: str, join: str) -> tuple[str, list]:
    """SQL for one registry filter comparison (attributes or tags)."""
    if comparison.entity == Entity.ATTRIBUTE:
        return value_condition(dialect, columns[comparison.key], comparison)
    exists = f"SELECT 1 FROM {tag_table} x WHERE {join} AND x.key = ?"
    if comparison.operator == "!=":
        # Registry tags: a model without the tag differs from any value (MLflow's clients
        # rely on it: they exclude prompts with tags.`mlflow.prompt.is_prompt` != 'true').
        return f"NOT EXISTS ({exists} AND x.value = ?)", [comparison.key, comparison.value]
    if comparison.operator == "IS NULL":
        return f"NOT EXISTS ({exists})", [comparison.key]
    if comparison.operator == "IS NOT NULL":
        return f"EXISTS ({exists})", [comparison.key]
    sql, values = value_condition(dialect, "x.value", comparison)
    return f"EXISTS ({exists} AND {sql})", [comparison.key, *values]

