"""Schema migrations of the SQLite store.

Each migration is a function applied once, in order, and recorded in ``_sqlite_migrations``.
Never edit a migration that has shipped: add a new one.
"""

from __future__ import annotations

import sqlite3

from sqlite_utils import Database, Migrations

migrations = Migrations("labtrack")


def _run(db: Database, statements: str) -> None:
    # executescript() would COMMIT the surrounding transaction, so run statements one by one;
    # sqlite3.complete_statement knows about comments and string literals.
    pending = ""
    for line in (statements.strip() + ";").splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                db.execute(pending)
            pending = ""


@migrations()
def m001_tracking(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE experiments (
            experiment_id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            artifact_location TEXT NOT NULL,
            lifecycle_stage TEXT NOT NULL DEFAULT 'active'
                CHECK (lifecycle_stage IN ('active', 'deleted')),
            creation_time INTEGER,
            last_update_time INTEGER
        );
        CREATE INDEX experiments_creation_time ON experiments (creation_time);

        CREATE TABLE experiment_tags (
            experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (experiment_id, key)
        ) WITHOUT ROWID;
        CREATE INDEX experiment_tags_key_value ON experiment_tags (key, value);

        CREATE TABLE runs (
            run_uuid TEXT PRIMARY KEY,
            experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
            name TEXT NOT NULL,
            user_id TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL
                CHECK (status IN ('RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED')),
            start_time INTEGER,
            end_time INTEGER,
            deleted_time INTEGER,
            lifecycle_stage TEXT NOT NULL DEFAULT 'active'
                CHECK (lifecycle_stage IN ('active', 'deleted')),
            artifact_uri TEXT NOT NULL
        );
        -- Run searches filter by experiment and lifecycle and order by start time.
        CREATE INDEX runs_experiment_lifecycle_start
            ON runs (experiment_id, lifecycle_stage, start_time DESC);

        -- Searches look params, tags and metrics up by (run, key), which the primary keys
        -- serve. Indexes on (key, value) would double the pages every run creation writes.
        CREATE TABLE params (
            run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (run_uuid, key)
        ) WITHOUT ROWID;

        CREATE TABLE tags (
            run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (run_uuid, key)
        ) WITHOUT ROWID;

        -- One row per (run, key): the latest point by (step, timestamp, value) as MLflow
        -- orders them, the series length, and the id the history is stored under.
        -- value NULL means NaN (SQLite cannot store NaN). nan_count, in_order and the last
        -- point let a full read skip both the NaN conversion and the sort when it can.
        CREATE TABLE latest_metrics (
            series_id INTEGER PRIMARY KEY,
            run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
            key TEXT NOT NULL,
            value REAL,
            timestamp INTEGER NOT NULL,
            step INTEGER NOT NULL,
            point_count INTEGER NOT NULL,
            nan_count INTEGER NOT NULL DEFAULT 0,
            in_order INTEGER NOT NULL DEFAULT 1,
            last_timestamp INTEGER NOT NULL,
            last_step INTEGER NOT NULL,
            UNIQUE (run_uuid, key)
        );

        -- Append-only history: seq is the point's position in logging order.
        CREATE TABLE metrics (
            series_id INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            step INTEGER NOT NULL,
            timestamp INTEGER NOT NULL,
            value REAL,
            PRIMARY KEY (series_id, seq)
        ) WITHOUT ROWID;

        -- Min/max summaries of consecutive points (see store/metric_summary.py). A level is
        -- kept once the series is longer than one of its buckets.
        CREATE TABLE metric_buckets (
            series_id INTEGER NOT NULL,
            level INTEGER NOT NULL,
            bucket INTEGER NOT NULL,
            count INTEGER NOT NULL,
            first_step INTEGER NOT NULL,
            first_timestamp INTEGER NOT NULL,
            first_value REAL,
            last_step INTEGER NOT NULL,
            last_timestamp INTEGER NOT NULL,
            last_value REAL,
            min_step INTEGER,
            min_timestamp INTEGER,
            min_value REAL,
            max_step INTEGER,
            max_timestamp INTEGER,
            max_value REAL,
            PRIMARY KEY (series_id, level, bucket)
        ) WITHOUT ROWID
        """,
    )


@migrations()
def m002_inputs_outputs_logged_models(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE datasets (
            dataset_uuid TEXT PRIMARY KEY,
            experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
            name TEXT NOT NULL,
            digest TEXT NOT NULL,
            source_type TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT '',
            schema TEXT,
            profile TEXT,
            UNIQUE (experiment_id, name, digest)
        );

        CREATE TABLE run_dataset_inputs (
            run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
            dataset_uuid TEXT NOT NULL REFERENCES datasets (dataset_uuid),
            tags TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (run_uuid, dataset_uuid)
        ) WITHOUT ROWID;

        -- MLflow 3 "logged models": a model with its own id, logged by a run.
        CREATE TABLE logged_models (
            model_id TEXT PRIMARY KEY,
            experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
            name TEXT NOT NULL,
            artifact_location TEXT NOT NULL,
            creation_timestamp_ms INTEGER NOT NULL,
            last_updated_timestamp_ms INTEGER NOT NULL,
            status TEXT NOT NULL,
            status_message TEXT,
            model_type TEXT,
            source_run_id TEXT,
            lifecycle_stage TEXT NOT NULL DEFAULT 'active'
                CHECK (lifecycle_stage IN ('active', 'deleted'))
        );
        CREATE INDEX logged_models_experiment_created
            ON logged_models (experiment_id, creation_timestamp_ms DESC);
        CREATE INDEX logged_models_source_run ON logged_models (source_run_id);

        CREATE TABLE logged_model_params (
            model_id TEXT NOT NULL REFERENCES logged_models (model_id),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (model_id, key)
        ) WITHOUT ROWID;

        CREATE TABLE logged_model_tags (
            model_id TEXT NOT NULL REFERENCES logged_models (model_id),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (model_id, key)
        ) WITHOUT ROWID;

        CREATE TABLE run_model_inputs (
            run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
            model_id TEXT NOT NULL,
            PRIMARY KEY (run_uuid, model_id)
        ) WITHOUT ROWID;

        CREATE TABLE run_model_outputs (
            run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
            model_id TEXT NOT NULL,
            step INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (run_uuid, model_id)
        ) WITHOUT ROWID
        """,
    )


@migrations()
def m003_store_settings(db: Database) -> None:
    # Facts about the store itself, such as its artifact root, so that every process opening
    # the database (Jupyter server, kernels, scripts) files new artifacts in the same place.
    db.execute(
        "CREATE TABLE store_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"
    )


@migrations()
def m004_registry(db: Database) -> None:
    _run(
        db,
        """
        -- model_id is internal: renaming a model is one UPDATE, every other table follows.
        -- AUTOINCREMENT: a deleted model's id (its history, its permission URL) is never
        -- given to a new model; the same for request and comment ids below.
        CREATE TABLE registered_models (
            model_id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            creation_time INTEGER NOT NULL,
            last_updated_time INTEGER NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            user_id TEXT NOT NULL DEFAULT '',
            -- Version numbers are never reused, even after a deletion: the audit trail and
            -- deployed references keep meaning what they meant.
            next_version INTEGER NOT NULL DEFAULT 1
        );

        CREATE TABLE registered_model_tags (
            model_id INTEGER NOT NULL REFERENCES registered_models (model_id)
                ON DELETE CASCADE,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (model_id, key)
        ) WITHOUT ROWID;

        CREATE TABLE model_versions (
            model_id INTEGER NOT NULL REFERENCES registered_models (model_id)
                ON DELETE CASCADE,
            version INTEGER NOT NULL,
            creation_time INTEGER NOT NULL,
            last_updated_time INTEGER NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            user_id TEXT NOT NULL DEFAULT '',
            current_stage TEXT NOT NULL DEFAULT 'None'
                CHECK (current_stage IN ('None', 'Staging', 'Production', 'Archived')),
            source TEXT NOT NULL,
            run_id TEXT,
            run_link TEXT,
            status TEXT NOT NULL DEFAULT 'READY',
            status_message TEXT,
            logged_model_id TEXT,
            PRIMARY KEY (model_id, version)
        ) WITHOUT ROWID;
        CREATE INDEX model_versions_stage ON model_versions (model_id, current_stage, version);
        CREATE INDEX model_versions_run ON model_versions (run_id);

        CREATE TABLE model_version_tags (
            model_id INTEGER NOT NULL,
            version INTEGER NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (model_id, version, key),
            FOREIGN KEY (model_id, version) REFERENCES model_versions (model_id, version)
                ON DELETE CASCADE
        ) WITHOUT ROWID;

        CREATE TABLE model_aliases (
            model_id INTEGER NOT NULL,
            alias TEXT NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (model_id, alias),
            FOREIGN KEY (model_id, version) REFERENCES model_versions (model_id, version)
                ON DELETE CASCADE
        ) WITHOUT ROWID;

        CREATE TABLE transition_requests (
            request_id INTEGER PRIMARY KEY AUTOINCREMENT,
            model_id INTEGER NOT NULL,
            version INTEGER NOT NULL,
            to_stage TEXT NOT NULL,
            user_id TEXT NOT NULL,
            comment TEXT,
            creation_time INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'OPEN'
                CHECK (status IN ('OPEN', 'APPROVED', 'REJECTED', 'CANCELLED')),
            resolved_by TEXT,
            resolved_time INTEGER,
            FOREIGN KEY (model_id, version) REFERENCES model_versions (model_id, version)
                ON DELETE CASCADE
        );
        CREATE INDEX transition_requests_open ON transition_requests (status, model_id, version);

        -- The audit trail: rows are inserted, never updated or deleted (they outlive the
        -- model, so model_name is kept as it was when the event happened).
        CREATE TABLE activities (
            activity_id INTEGER PRIMARY KEY,
            model_id INTEGER NOT NULL,
            model_name TEXT NOT NULL,
            version INTEGER,
            activity_type TEXT NOT NULL,
            user_id TEXT NOT NULL,
            creation_time INTEGER NOT NULL,
            from_stage TEXT,
            to_stage TEXT,
            comment TEXT,
            system_comment TEXT
        );
        CREATE INDEX activities_model ON activities (model_id, activity_id DESC);
        CREATE INDEX activities_version ON activities (model_id, version, activity_id DESC);

        CREATE TABLE comments (
            comment_id INTEGER PRIMARY KEY AUTOINCREMENT,
            model_id INTEGER NOT NULL,
            version INTEGER NOT NULL,
            user_id TEXT NOT NULL,
            comment TEXT NOT NULL,
            creation_time INTEGER NOT NULL,
            last_updated_time INTEGER NOT NULL,
            FOREIGN KEY (model_id, version) REFERENCES model_versions (model_id, version)
                ON DELETE CASCADE
        );
        CREATE INDEX comments_version ON comments (model_id, version, comment_id);

        CREATE TABLE model_permissions (
            model_id INTEGER NOT NULL REFERENCES registered_models (model_id)
                ON DELETE CASCADE,
            user_name TEXT NOT NULL,
            level TEXT NOT NULL,
            PRIMARY KEY (model_id, user_name)
        ) WITHOUT ROWID;

        CREATE TABLE webhooks (
            webhook_id TEXT PRIMARY KEY,
            model_id INTEGER REFERENCES registered_models (model_id) ON DELETE CASCADE,
            events TEXT NOT NULL,
            url TEXT NOT NULL,
            secret TEXT,
            status TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            enable_ssl_verification INTEGER NOT NULL DEFAULT 1,
            creation_time INTEGER NOT NULL,
            last_updated_time INTEGER NOT NULL
        );
        CREATE INDEX webhooks_model ON webhooks (model_id);

        CREATE TABLE webhook_deliveries (
            delivery_id TEXT PRIMARY KEY,
            webhook_id TEXT NOT NULL REFERENCES webhooks (webhook_id) ON DELETE CASCADE,
            event TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            creation_time INTEGER NOT NULL,
            last_attempt_time INTEGER,
            response_status INTEGER,
            last_error TEXT
        );
        CREATE INDEX webhook_deliveries_webhook
            ON webhook_deliveries (webhook_id, creation_time DESC);
        CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (status)
        """,
    )


@migrations()
def m005_accounts(db: Database) -> None:
    _run(
        db,
        """
        -- The users and API tokens of `labtrack server` (`labtrack users` / `labtrack tokens`).
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            creation_time INTEGER NOT NULL
        ) WITHOUT ROWID;

        -- Only a hash of each token's secret: a copy of the database grants no access.
        CREATE TABLE api_tokens (
            token_id TEXT PRIMARY KEY,
            user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
            secret_hash TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            creation_time INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX api_tokens_user ON api_tokens (user_name)
        """,
    )


@migrations()
def m006_delivery_claims(db: Database) -> None:
    _run(
        db,
        """
        -- Which server process sends a pending delivery, and since when: several processes
        -- share the store, and a claim taken by one that died becomes stale after a timeout.
        ALTER TABLE webhook_deliveries ADD COLUMN claimed_by TEXT;
        ALTER TABLE webhook_deliveries ADD COLUMN claim_time INTEGER
        """,
    )
