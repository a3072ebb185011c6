"""``labtrack server`` with the store's users and tokens (``labtrack users`` / ``labtrack
tokens``): a token acts as its user in "Created by", approvals and registry permissions, and
stops working once revoked or its user deleted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from labtrack.cli import main
from labtrack.server.context import ServerContext
from labtrack.services.accounts import AccountService
from labtrack.services.permissions import RegistrySettings
from labtrack.store import SqliteStore
from tests.server.conftest import MODEL_SOURCE, _serve
from tests.standalone_server import free_port


@pytest.fixture
def store_dir(tmp_path):
    return tmp_path / "team"


@pytest.fixture
def tokens(store_dir, capsys):
    """ann and bob with a token each, made with the commands an administrator runs."""
    made = {}
    for user in ("ann", "bob"):
        assert main(["users", "create", user, "--backend-store-uri", str(store_dir)]) == 0
        assert main(["tokens", "create", user, "--backend-store-uri", str(store_dir)]) == 0
        made[user] = capsys.readouterr().out.strip().splitlines()[-1]
    return made


@pytest.fixture
def team_server(store_dir, tokens, jp_asyncio_loop):
    """The server with no command-line token: only the store's accounts."""
    store = SqliteStore(store_dir / "labtrack.db")
    context = ServerContext(store, str(store_dir), registry_settings=RegistrySettings())
    yield from _serve(jp_asyncio_loop, context, {}, AccountService(store))



def as_user(server, token):
    return server.api({"Authorization": f"Bearer {token}"})


async def test_a_token_acts_as_its_user(team_server, tokens):
    ann, bob = as_user(team_server, tokens["ann"]), as_user(team_server, tokens["bob"])
    run = await ann.create_run()
    assert run["info"]["user_id"] == "ann"
    model = await ann.create_registered_model("forecast")
    assert model["user_id"] == "ann"
    await ann.create_model_version("forecast", MODEL_SOURCE)
    # bob reads ann's model but may not change it: permissions follow the token's user.
    status, data = await bob.post("registered-models/set-tag",
                                  {"name": "forecast", "key": "k", "value": "v"})
    assert status == 403 and "User 'bob' has CAN_READ" in data["message"]
    status, data = await bob.post("comments/create",
                                  {"name": "forecast", "version": "1", "comment": "why?"})
    assert (status, data["comment"]["user_id"]) == (200, "bob")
    # Once ann lets bob edit, his transition request is his.
    await ann.grant("forecast", "bob", "CAN_EDIT")
    status, data = await bob.post("transition-requests/create",
                                  {"name": "forecast", "version": "1", "stage": "Staging"})
    assert (status, data["request"]["user_id"]) == (200, "bob")


async def test_unknown_revoked_and_deleted_tokens_are_refused(team_server, tokens, store_dir,
                                                              capsys):
    assert (await as_user(team_server, "lt_nonsense").call("GET", "/api/2.0/mlflow/"
            "experiments/search", params={"max_results": "1"}))[0] == 401
    ann = as_user(team_server, tokens["ann"])
    assert (await ann.get("experiments/search", {"max_results": "1"}))[0] == 200

    token_id = tokens["ann"].split("_")[1]
    assert main(["tokens", "revoke", token_id, "--backend-store-uri", str(store_dir)]) == 0
    status, data = await ann.get("experiments/search", {"max_results": "1"})
    assert (status, data["error_code"]) == (401, "UNAUTHENTICATED")

    bob = as_user(team_server, tokens["bob"])
    assert (await bob.get("experiments/search", {"max_results": "1"}))[0] == 200
    assert main(["users", "delete", "bob", "--backend-store-uri", str(store_dir)]) == 0
    assert (await bob.get("experiments/search", {"max_results": "1"}))[0] == 401


def test_the_commands_list_users_and_tokens(tokens, store_dir, capsys):
    capsys.readouterr()
    assert main(["users", "list", "--backend-store-uri", str(store_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["ann", "bob"]
    assert all(line.endswith("1 token(s)") for line in lines)
    assert main(["tokens", "list", "--user", "ann", "--backend-store-uri",
                 str(store_dir)]) == 0
    listed = capsys.readouterr().out
    assert tokens["ann"].split("_")[1] in listed
    assert tokens["ann"].rpartition("_")[2] not in listed  # never the secret
    assert main(["users", "create", "ann", "--backend-store-uri", str(store_dir)]) == 2
    assert "User 'ann' already exists." in capsys.readouterr().err


def test_the_server_started_without_a_token_accepts_only_the_stores(store_dir, tokens,
                                                                    tmp_path):
    """``labtrack server`` as a team runs it: no --token, no generated token."""
    port = free_port()
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if k not in ("LABTRACK_SERVER_TOKEN",)}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("labtrack")), "server", "--host", "127.0.0.1",
             "--port", str(port), "--backend-store-uri", str(store_dir)],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                answer = requests.get(url, headers={"Authorization": f"Bearer {tokens['ann']}"},
                                      timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert answer.status_code == 200
        assert requests.get(url, timeout=5).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    assert "token (set" not in log.read_text()  # no token of its own was generated
