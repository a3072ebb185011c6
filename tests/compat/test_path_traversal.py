"""Path traversal, in the style of MLflow's published advisories, against both hosts.

Each attack goes out as raw HTTP (nothing normalised by the client) with a valid token.
Every one must be refused with a 4xx in MLflow's error shape — never a 500 — and nothing
outside the server's artifact root may be read, written or deleted; the file system is
checked afterwards. The targets are a canary folder next to the store
(``<base>/outside``, i.e. ``../../outside`` seen from the artifact root
``<base>/store/artifacts``), the store's own database, ``/etc/passwd`` and fresh names in
``/tmp``.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import quote

import mlflow
import pytest
import requests
from mlflow.exceptions import ERROR_CODE_TO_HTTP_STATUS, MlflowException

from tests.compat.helpers import unique

PROXY = "/api/2.0/mlflow-artifacts/artifacts"
CANARY = b"canary: this file lies outside the artifact root\n"
PASSWD_MARKERS = (b"root:", b"/bin/")
SQLITE_MAGIC = b"SQLite format 3"
# How the stock client reports a refused artifact call (its artifact repository raises
# requests' HTTPError with the server's message; REST calls raise MlflowException).
CLIENT_ERRORS = (MlflowException, requests.HTTPError)


def assert_refused(response) -> dict:
    """A 4xx with MLflow's JSON error body whose code matches the status."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert response.headers.get("Content-Type", "").startswith("application/json"), (
        response.headers.get("Content-Type"), response.text[:500])
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert body.get("error_code") in ERROR_CODE_TO_HTTP_STATUS, body
    # The status is the one MLflow gives that code (a bare 404 also maps back to a 404 code).
    assert ERROR_CODE_TO_HTTP_STATUS[body["error_code"]] == response.status_code, (
        response.status_code, body)
    return body


def assert_leaks_nothing(response) -> None:
    content = response.content
    assert CANARY not in content
    assert SQLITE_MAGIC not in content
    assert not all(marker in content for marker in PASSWD_MARKERS)


class Guard:
    """The server's surroundings: a canary folder outside the root and what must not change."""

    def __init__(self, server):
        self.server = server
        self.root = server.artifact_root
        self.base = server.store_dir.parent
        self.outside = self.base / "outside"
        self.outside.mkdir(exist_ok=True)
        self.canary = self.outside / "canary.txt"
        self.canary.write_bytes(CANARY)
        self.evil = f"evil-{uuid.uuid4().hex}.txt"  # what attacks try to create
        self._outside_before = self._snapshot(self.outside)
        self._store_before = self._store_entries()

    @staticmethod
    def _snapshot(folder: Path) -> dict[str, bytes]:
        return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else b"<dir>")
                for p in sorted(folder.rglob("*"))}

    def _store_entries(self) -> set[str]:
        """What sits next to the artifact root (the database files and the root aside)."""
        return {p.name for p in self.server.store_dir.iterdir()
                if not p.name.startswith("labtrack.db") and p != self.root}

    def check(self) -> None:
        """Nothing outside the root was written or deleted."""
        assert self.canary.read_bytes() == CANARY
        assert self._snapshot(self.outside) == self._outside_before
        assert self._store_entries() == self._store_before
        for folder in (self.base, Path("/tmp"), Path("/etc"), Path.cwd()):
            assert not (folder / self.evil).exists(), folder / self.evil
        assert not [p for p in self.base.rglob(self.evil)]


@pytest.fixture
def guard(tracking_server):
    guard = Guard(tracking_server)
    yield guard
    guard.check()


@pytest.fixture
def run_with_artifacts(mlflow_client, experiment_id):
    """A run holding data/ok.txt, and the folder its artifacts live in on disk."""
    with mlflow.start_run() as run:
        mlflow.log_text("fine", "data/ok.txt")
    return run


def _proxy_path(run, relative: str = "") -> str:
    """The proxy path (relative to the artifact root) of a run artifact."""
    prefix = run.info.artifact_uri[len("mlflow-artifacts:/"):].lstrip("/")
    return f"{prefix}/{relative}" if relative else prefix


# -- the proxied artifact service: GET, PUT and DELETE of one file ------------------------------

# Paths as they go on the wire after /api/2.0/mlflow-artifacts/artifacts/; "{name}" is the
# target file in <base>/outside, "{abs}" its absolute path.
FILE_ATTACKS = {
    "dotdot": "../../outside/{name}",
    "dotdot-after-a-valid-prefix": "0/run/artifacts/../../../../../outside/{name}",
    "dot-dotdot": "./../../outside/{name}",
    "encoded-slash": "..%2f..%2foutside%2f{name}",
    "encoded-dots": "%2e%2e/%2e%2e/outside/{name}",
    "encoded-all": "%2e%2e%2f%2e%2e%2foutside%2f{name}",
    "encoded-upper": "%2E%2E%2F%2E%2E%2Foutside%2F{name}",
    "encoded-half": ".%2e/%2e./outside/{name}",
    "double-encoded": "%252e%252e%252f%252e%252e%252foutside%252f{name}",
    "double-encoded-dots": "%252e%252e/%252e%252e/outside/{name}",
    "triple-encoded": "%25252e%25252e%25252f%25252e%25252e%25252foutside%25252f{name}",
    "absolute": "{abs}",  # …/artifacts//tmp/…
    "absolute-encoded": "{abs_encoded}",
    "absolute-double-encoded": "{abs_double}",
    "nul-byte": "data%00/../../../outside/{name}",
    "windows-drive": "C:/outside/{name}",
}


def _attack_path(template: str, target: Path) -> str:
    absolute = target.as_posix()
    return template.format(
        name=target.name,
        abs=absolute,
        abs_encoded=quote(absolute, safe=""),
        abs_double=quote(quote(absolute, safe=""), safe=""),
    )


@pytest.mark.parametrize("template", FILE_ATTACKS.values(), ids=FILE_ATTACKS.keys())
def test_get_outside_the_root(api, guard, template):
    response = api.get(f"{PROXY}/{_attack_path(template, guard.canary)}")
    assert_refused(response)
    assert_leaks_nothing(response)


@pytest.mark.parametrize("template", FILE_ATTACKS.values(), ids=FILE_ATTACKS.keys())
def test_put_outside_the_root(api, guard, template):
    response = api.put(f"{PROXY}/{_attack_path(template, guard.outside / guard.evil)}",
                       data=b"written by an attacker")
    assert_refused(response)


@pytest.mark.parametrize("template", FILE_ATTACKS.values(), ids=FILE_ATTACKS.keys())
def test_delete_outside_the_root(api, guard, template):
    response = api.delete(f"{PROXY}/{_attack_path(template, guard.canary)}")
    assert_refused(response)


SYSTEM_FILES = {
    "etc-passwd": "/etc/passwd",
    "etc-passwd-encoded": "%2Fetc%2Fpasswd",
    "etc-passwd-double-encoded": "%252Fetc%252Fpasswd",
    "etc-passwd-climb": "../../../../../../../../../../etc/passwd",
    "etc-passwd-climb-encoded": "%2e%2e%2f" * 12 + "etc%2fpasswd",
    "store-database": "../labtrack.db",
    "store-database-encoded": "%2e%2e%2flabtrack.db",
    "store-database-double-encoded": "%252e%252e%252flabtrack.db",
}


@pytest.mark.parametrize("path", SYSTEM_FILES.values(), ids=SYSTEM_FILES.keys())
def test_get_system_and_store_files(api, guard, path):
    response = api.get(f"{PROXY}/{path}")
    assert_refused(response)
    assert_leaks_nothing(response)


@pytest.mark.parametrize("path", ["/tmp/{evil}", "%2Ftmp%2F{evil}", "%252Ftmp%252F{evil}",
                                  "../../../../../../../../../../tmp/{evil}",
                                  "../{evil}", "%2e%2e%2f{evil}"],
                         ids=["tmp", "tmp-encoded", "tmp-double-encoded", "tmp-climb",
                              "store-folder", "store-folder-encoded"])
def test_put_into_system_folders(api, guard, path):
    response = api.put(f"{PROXY}/{path.format(evil=guard.evil)}", data=b"attacker")
    assert_refused(response)


# Only the SQLite-backed servers: on PostgreSQL there is no database file for a path to reach
# (the traversal itself is refused by the other tests in this module, on every server).
@pytest.mark.parametrize("tracking_server", ["jupyter", "standalone"], indirect=True)
@pytest.mark.parametrize("path", ["../labtrack.db", "%2e%2e%2flabtrack.db",
                                  "%252e%252e%252flabtrack.db"],
                         ids=["literal", "encoded", "double-encoded"])
def test_delete_the_store_database(api, guard, tracking_server, path):
    assert tracking_server.backend == "sqlite"
    response = api.delete(f"{PROXY}/{path}")
    assert_refused(response)
    assert (tracking_server.store_dir / "labtrack.db").read_bytes().startswith(SQLITE_MAGIC)


@pytest.mark.parametrize("path", [".", "%2e", "./", "data/..", "data/%2e%2e", "%252e"],
                         ids=["dot", "encoded-dot", "dot-slash", "up-to-root",
                              "encoded-up-to-root", "double-encoded-dot"])
def test_delete_the_whole_root_is_refused(api, guard, run_with_artifacts, tracking_server,
                                          path):
    response = api.delete(f"{PROXY}/{path}")
    assert_refused(response)
    on_disk = tracking_server.local_path(run_with_artifacts.info.artifact_uri)
    assert (on_disk / "data" / "ok.txt").read_text() == "fine"


def test_valid_requests_still_work(api, guard, run_with_artifacts, tracking_server):
    """The refusals above are not a blanket: the same routes serve legitimate paths."""
    path = _proxy_path(run_with_artifacts, "data/ok.txt")
    assert api.get(f"{PROXY}/{path}").content == b"fine"
    assert api.put(f"{PROXY}/{_proxy_path(run_with_artifacts, 'data/new.txt')}",
                   data=b"new").status_code == 200
    on_disk = tracking_server.local_path(run_with_artifacts.info.artifact_uri)
    assert (on_disk / "data" / "new.txt").read_bytes() == b"new"
    assert api.delete(f"{PROXY}/{_proxy_path(run_with_artifacts, 'data/new.txt')}"
                      ).status_code == 200
    assert not (on_disk / "data" / "new.txt").exists()


# -- listings ----------------------------------------------------------------------------------

LIST_ATTACKS = {
    "dotdot": "..",
    "dotdot-deep": "../../outside",
    "climb": "../../../../../../../../etc",
    "after-a-valid-prefix": "data/../../../../../../outside",
    "absolute": "/etc",
    "absolute-outside": "{outside}",
    "encoded-dotdot": "%2e%2e%2f%2e%2e%2foutside",
    "double-encoded-dotdot": "%252e%252e%252f%252e%252e%252foutside",
    "nul-byte": "data\x00/../..",
}


@pytest.mark.parametrize("path", LIST_ATTACKS.values(), ids=LIST_ATTACKS.keys())
def test_run_listing_outside_the_run(api, guard, run_with_artifacts, path):
    response = api.get("/api/2.0/mlflow/artifacts/list",
                       params={"run_id": run_with_artifacts.info.run_id,
                               "path": path.format(outside=guard.outside)})
    assert_refused(response)
    assert "canary" not in response.text


@pytest.mark.parametrize("path", LIST_ATTACKS.values(), ids=LIST_ATTACKS.keys())
def test_proxy_listing_outside_the_root(api, guard, path):
    response = api.get(PROXY, params={"path": path.format(outside=guard.outside)})
    assert_refused(response)
    assert "canary" not in response.text


@pytest.mark.parametrize("run_id", ["..", "../..", "%2e%2e", "/etc/passwd"])
def test_run_listing_with_a_path_as_run_id(api, guard, run_id):
    response = api.get("/api/2.0/mlflow/artifacts/list", params={"run_id": run_id})
    assert_refused(response)


@pytest.mark.parametrize("path", ["..", "../../../../../..", "../../../outside",
                                  "%2e%2e%2f%2e%2e", "/etc"])
def test_logged_model_listing_outside_the_model(api, guard, experiment_id, path):
    created = api.post("/api/2.0/mlflow/logged-models",
                       json={"experiment_id": experiment_id, "name": "m"})
    assert created.status_code == 200, created.text
    model_id = created.json()["model"]["info"]["model_id"]
    response = api.get(f"/api/2.0/mlflow/logged-models/{model_id}/artifacts/directories",
                       params={"artifact_directory_path": path})
    assert_refused(response)
    assert "canary" not in response.text


@pytest.mark.parametrize("model_id", ["..", "%2e%2e", "..%2f..%2f..", "%252e%252e"])
def test_logged_model_id_is_not_a_path(api, guard, model_id):
    response = api.get(f"/api/2.0/mlflow/logged-models/{model_id}/artifacts/directories")
    assert_refused(response)


# -- experiment artifact locations -------------------------------------------------------------


def _locations(guard) -> dict[str, str]:
    root, outside, scratch = guard.root, guard.outside, f"/tmp/{guard.evil}"
    return {
        "proxy-fragment": "mlflow-artifacts:/x#/../../../outside",
        "proxy-query": "mlflow-artifacts:/x?/../../../outside",
        "proxy-dotdot": "mlflow-artifacts:/../../outside",
        "proxy-encoded-dotdot": "mlflow-artifacts:/x/%2e%2e/%2e%2e/%2e%2e/outside",
        "proxy-double-encoded-dotdot": "mlflow-artifacts:/x/%252e%252e/%252e%252e/outside",
        "file-query": f"file://{scratch}?/../../etc",
        "file-fragment": f"file://{scratch}#/../../etc",
        "etc": "/etc",
        "file-etc": "file:///etc",
        "file-localhost-etc": "file://localhost/etc",
        "file-remote-host": "file://attacker.example/share",
        "outside-folder": str(outside),
        "file-outside-folder": outside.as_uri(),
        "file-dotdot-out-of-root": f"{root.as_uri()}/../../outside",
        "file-encoded-dotdot-out-of-root": f"{root.as_uri()}/%2e%2e/%2e%2e/outside",
        "sibling-with-the-root-as-prefix": f"{root}-evil",
        "file-sibling-with-the-root-as-prefix": f"{root.as_uri()}-evil",
        "relative": "relative/folder",
        "relative-dotdot": "../outside",
        "tmp-scratch": scratch,
    }


LOCATION_IDS = [
    "proxy-fragment", "proxy-query", "proxy-dotdot", "proxy-encoded-dotdot",
    "proxy-double-encoded-dotdot", "file-query", "file-fragment", "etc", "file-etc",
    "file-localhost-etc", "file-remote-host", "outside-folder", "file-outside-folder",
    "file-dotdot-out-of-root", "file-encoded-dotdot-out-of-root",
    "sibling-with-the-root-as-prefix", "file-sibling-with-the-root-as-prefix", "relative",
    "relative-dotdot", "tmp-scratch",
]


@pytest.mark.parametrize("attack", LOCATION_IDS)
def test_experiment_location_outside_the_root(api, guard, mlflow_client, attack):
    location = _locations(guard)[attack]
    name = unique("located")
    response = api.post("/api/2.0/mlflow/experiments/create",
                        json={"name": name, "artifact_location": location})
    body = assert_refused(response)
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert mlflow_client.get_experiment_by_name(name) is None
    # The stock client gets the same answer as an MlflowException.
    with pytest.raises(MlflowException) as error:
        mlflow_client.create_experiment(unique("located"), artifact_location=location)
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"
    assert not Path(f"{guard.root}-evil").exists()
    assert not Path("/tmp", guard.evil).exists()


@pytest.mark.parametrize("form", ["proxy", "file"])
def test_experiment_location_through_a_symlink_out_of_the_root(api, guard, mlflow_client,
                                                               form):
    link = guard.root / f"link-{uuid.uuid4().hex[:8]}"
    link.symlink_to(guard.outside, target_is_directory=True)
    location = (f"mlflow-artifacts:/{link.name}" if form == "proxy"
                else f"{guard.root.as_uri()}/{link.name}")
    name = unique("linked")
    response = api.post("/api/2.0/mlflow/experiments/create",
                        json={"name": name, "artifact_location": location})
    body = assert_refused(response)
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert mlflow_client.get_experiment_by_name(name) is None


def test_experiment_location_inside_the_root_is_accepted(api, guard, mlflow_client):
    """Locations under the root stay legal, in either form."""
    for location, expected in [("mlflow-artifacts:/custom/place", "mlflow-artifacts:/custom/place"),
                               (f"{guard.root.as_uri()}/elsewhere", "mlflow-artifacts:/elsewhere")]:
        name = unique("inside")
        response = api.post("/api/2.0/mlflow/experiments/create",
                            json={"name": name, "artifact_location": location})
        assert response.status_code == 200, response.text
        assert mlflow_client.get_experiment_by_name(name).artifact_location == expected


# -- symbolic links planted inside the artifact folder -----------------------------------------


@pytest.fixture
def planted(tracking_server, guard, run_with_artifacts):
    """Links inside the run's folder: data/leak.txt -> the canary, linked/ -> outside/."""
    folder = tracking_server.local_path(run_with_artifacts.info.artifact_uri)
    (folder / "data" / "leak.txt").symlink_to(guard.canary)
    (folder / "linked").symlink_to(guard.outside, target_is_directory=True)
    return run_with_artifacts


def test_symlinked_file_is_not_served(api, guard, planted):
    response = api.get(f"{PROXY}/{_proxy_path(planted, 'data/leak.txt')}")
    assert_refused(response)
    assert_leaks_nothing(response)


def test_file_in_symlinked_folder_is_not_served(api, guard, planted):
    response = api.get(f"{PROXY}/{_proxy_path(planted, 'linked/canary.txt')}")
    assert_refused(response)
    assert_leaks_nothing(response)


def test_symlinked_file_is_not_overwritten(api, guard, planted):
    response = api.put(f"{PROXY}/{_proxy_path(planted, 'data/leak.txt')}", data=b"overwrite")
    assert_refused(response)


def test_nothing_is_written_through_a_symlinked_folder(api, guard, planted):
    for relative in (f"linked/{guard.evil}", f"linked/new-folder/{guard.evil}"):
        response = api.put(f"{PROXY}/{_proxy_path(planted, relative)}", data=b"attacker")
        assert_refused(response)
    assert not (guard.outside / "new-folder").exists()


def test_nothing_is_deleted_through_a_symlinked_folder(api, guard, planted):
    response = api.delete(f"{PROXY}/{_proxy_path(planted, 'linked/canary.txt')}")
    assert_refused(response)


def test_deleting_a_symlinked_file_spares_its_target(api, guard, planted):
    response = api.delete(f"{PROXY}/{_proxy_path(planted, 'data/leak.txt')}")
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_refused(response)
    # guard.check(): the canary is intact


def test_listings_do_not_follow_links_out(api, guard, planted):
    for response in (
        api.get("/api/2.0/mlflow/artifacts/list",
                params={"run_id": planted.info.run_id, "path": "linked"}),
        api.get(PROXY, params={"path": _proxy_path(planted, "linked")}),
    ):
        assert response.status_code < 500, response.text
        assert "canary" not in response.text
        if response.status_code >= 400:
            assert_refused(response)
    for response in (
        api.get("/api/2.0/mlflow/artifacts/list",
                params={"run_id": planted.info.run_id, "path": "data"}),
        api.get(PROXY, params={"path": _proxy_path(planted, "data")}),
    ):
        assert response.status_code == 200, response.text
        files = response.json()["files"]
        assert any(f["path"].endswith("ok.txt") for f in files)
        # A link out of the root is not part of the run: never listed with its target's size.
        assert not [f for f in files if f.get("file_size") == len(CANARY)], files


def test_stock_client_download_is_refused(mlflow_client, guard, planted, tmp_path):
    run_id = planted.info.run_id
    with pytest.raises(CLIENT_ERRORS):
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="data/leak.txt",
                                            dst_path=str(tmp_path / "file"))
    with pytest.raises(CLIENT_ERRORS):
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="linked/canary.txt",
                                            dst_path=str(tmp_path / "linked-file"))
    # Whole folders: either refused or downloaded without what lies behind the links.
    for artifact_path in ("data", "linked", None):
        destination = tmp_path / f"folder-{artifact_path}"
        try:
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path,
                                                dst_path=str(destination))
        except CLIENT_ERRORS:  # refusal is fine
            pass
        if destination.exists():
            for path in destination.rglob("*"):
                assert not (path.is_file() and path.read_bytes() == CANARY), path
    downloaded = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(p.read_bytes() != CANARY for p in downloaded)


def test_stock_client_upload_through_a_symlink_is_refused(mlflow_client, guard, planted,
                                                          tmp_path):
    local = tmp_path / guard.evil
    local.write_text("attacker")
    with pytest.raises(CLIENT_ERRORS):
        mlflow_client.log_artifact(planted.info.run_id, str(local), artifact_path="linked")


def test_refused_requests_do_not_break_the_server(api, guard, tracking_server):
    """After a burst of attacks, the server still answers (no crashed handler thread)."""
    for template in FILE_ATTACKS.values():
        api.get(f"{PROXY}/{_attack_path(template, guard.canary)}")
    assert api.get("/health").text == "OK"
    assert os.path.isdir(tracking_server.artifact_root)
