from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from closeloop.contracts.identity import EntitlementKey, IdentityKind, canonical_ref, split_ref

ids = st.text(alphabet=st.characters(blacklist_characters="|", blacklist_categories=("Cs", "Cc", "Zs")), min_size=1)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)


@given(system=names, kind=names, ref_id=ids, resource_id=ids, privilege=names)
def test_key_round_trips_through_its_string_form(
    system: str, kind: str, ref_id: str, resource_id: str, privilege: str
) -> None:
    try:
        key = EntitlementKey(
            principal=canonical_ref(system, kind, ref_id),
            resource=canonical_ref(system, "r", resource_id),
            privilege=privilege,
        )
    except (ValueError, ValidationError):
        return  # ids that strip to nothing or exceed limits are rejected, which is the contract
    assert EntitlementKey.parse(str(key)) == key


def test_arn_ids_keep_their_colons() -> None:
    key = EntitlementKey(
        principal="aws:role:arn:aws:iam::123456789012:role/ci-deployer",
        resource="aws:policy:arn:aws:iam::aws:policy/AdministratorAccess",
        privilege="attached",
    )
    assert split_ref(key.principal) == ("aws", "role", "arn:aws:iam::123456789012:role/ci-deployer")
    assert key.system == "aws"
    assert str(key).count("|") == 2


def test_system_and_type_are_normalised_but_ids_are_not() -> None:
    key = EntitlementKey(principal="OKTA:User:Alice@Example.com", resource="okta:group:00gAbC", privilege=" Member ")
    assert key.principal == "okta:user:Alice@Example.com"
    assert key.privilege == "member"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"principal": "alice", "resource": "okta:group:1", "privilege": "member"},
        {"principal": "okta:user:a|b", "resource": "okta:group:1", "privilege": "member"},
        {"principal": "okta:user:alice", "resource": "okta:group:1", "privilege": "a|b"},
        {"principal": "okta::alice", "resource": "okta:group:1", "privilege": "member"},
    ],
)
def test_malformed_keys_are_rejected(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        EntitlementKey(**kwargs)


def test_nhi_kinds() -> None:
    assert not IdentityKind.HUMAN.is_nhi
    assert not IdentityKind.UNKNOWN.is_nhi
    assert all(k.is_nhi for k in IdentityKind if k not in (IdentityKind.HUMAN, IdentityKind.UNKNOWN))
