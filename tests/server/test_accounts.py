"""``labtrack server`` with the store's users and tokens (``labtrack users`` / ``labtrack
tokens``): a token acts as its user in "Created by", approvals and registry permissions, and
stops working once revoked or its user deleted."""

from __future__ import annotations

import pytest

from labtrack.cli import main
from labtrack.server.context import ServerContext
from labtrack.services.accounts import AccountService
from labtrack.services.permissions import RegistrySettings
from labtrack.store import SqliteStore
from tests.server.conftest import MODEL_SOURCE, _serve


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
