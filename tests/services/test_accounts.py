"""Users and API tokens over a real SQLite store: creation, authentication, revocation."""

from __future__ import annotations

import pytest

from labtrack.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from labtrack.services.accounts import AccountService


@pytest.fixture
def accounts(store):
    return AccountService(store)


def test_users_are_created_listed_and_deleted(accounts):
    accounts.create_user("bob")
    accounts.create_user("ann")
    assert [u.name for u in accounts.list_users()] == ["ann", "bob"]
    with pytest.raises(ResourceAlreadyExists, match="User 'ann' already exists"):
        accounts.create_user("ann")
    accounts.delete_user("ann")
    assert [u.name for u in accounts.list_users()] == ["bob"]
    with pytest.raises(ResourceDoesNotExist, match="No user 'ann'"):
        accounts.delete_user("ann")


@pytest.mark.parametrize("name", ["", "a b", "ann:x", "x" * 257, None])
def test_bad_user_names_are_refused(accounts, name):
    with pytest.raises(InvalidParameterValue):
        accounts.create_user(name)


def test_a_token_authenticates_as_its_user_and_only_the_hash_is_kept(accounts, store):
    accounts.create_user("ann")
    record, token = accounts.create_token("ann", "laptop")
    assert token.startswith(f"lt_{record.token_id}_")
    assert accounts.authenticate(token) == "ann"
    assert [(t.token_id, t.user_name, t.description) for t in accounts.list_tokens()] == [
        (record.token_id, "ann", "laptop")]
    _, kept = store.token_secret_hash(record.token_id)
    # The secret itself may contain "_" (URL-safe base64), so cut the known prefix off.
    secret = token.removeprefix(f"lt_{record.token_id}_")
    assert len(secret) >= 32 and secret not in kept and len(kept) == 64


def test_wrong_or_malformed_tokens_authenticate_no_one(accounts):
    accounts.create_user("ann")
    record, token = accounts.create_token("ann")
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    for presented in (forged, "", "lt_", token + "x", f"lt_{record.token_id}_",
                      "lt_0000000000000000_" + token.rpartition("_")[2]):
        assert accounts.authenticate(presented) is None


def test_revoked_tokens_and_deleted_users_no_longer_authenticate(accounts):
    accounts.create_user("ann")
    accounts.create_user("bob")
    first, first_token = accounts.create_token("ann")
    _, second_token = accounts.create_token("ann")
    _, bobs = accounts.create_token("bob")
    accounts.revoke_token(first.token_id)
    assert accounts.authenticate(first_token) is None
    assert accounts.authenticate(second_token) == "ann"
    accounts.revoke_token(second_token)  # the whole token names its id too
    assert accounts.authenticate(second_token) is None
    with pytest.raises(ResourceDoesNotExist, match="No API token"):
        accounts.revoke_token(first.token_id)
    accounts.delete_user("bob")
    assert accounts.authenticate(bobs) is None
    assert accounts.list_tokens() == []


def test_tokens_need_an_existing_user(accounts):
    with pytest.raises(ResourceDoesNotExist, match="No user 'nobody'"):
        accounts.create_token("nobody")
