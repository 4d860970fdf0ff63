"""Each rule as a pure function of (join view, clock, policy): positive and negative cases, grace windows,
and the precedence between rules that would otherwise report the same drift twice."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus
from closeloop.contracts.grants import Actor, CredentialFact, GrantAction, PrincipalStatus
from closeloop.contracts.identity import EntitlementKey, IdentityKind
from closeloop.contracts.tickets import TicketEvent, TicketKind, TicketTransition
from reconciliation.rules.automation import unreviewed_automated_change
from reconciliation.rules.closed_not_removed import closed_not_removed
from reconciliation.rules.expiry import exception_expired, expired_still_live
from reconciliation.rules.fulfilment import fulfilment_missing
from reconciliation.rules.inactive_principal import grant_to_inactive_principal
from reconciliation.rules.no_expiry import no_expiry
from reconciliation.rules.ownership import no_owner
from reconciliation.rules.recertification import recert_overdue
from reconciliation.rules.revoke_unconfirmed import revoke_unconfirmed
from reconciliation.rules.scope import scope_exceeds_approval
from reconciliation.rules.stale_credential import stale_credential
from reconciliation.rules.unticketed import unticketed_grant
from tests.unit.reconciliation.harness import POLICY, fold, view_of
from tests.unit.reconciliation.scenarios import GRACE, grant, key, record, status, ticket

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
USER = "okta:user:alice@example.com"
GROUP = "okta:group:00gadmins"
K = key(USER, GROUP, "member")
LATER = T0 + timedelta(hours=1)


def approved(k: EntitlementKey = K, at: datetime = T0, ticket_id: str = "t-1", **kw: Any) -> TicketEvent:
    return ticket(k, TicketTransition.APPROVED, at, ticket_id=ticket_id, **kw)


class TestUnticketedGrant:
    def test_live_grant_without_ticket_fires_after_the_grace_window(self) -> None:
        view = view_of(fold([grant(K, T0)], T0), K)
        result = unticketed_grant(view, T0 + timedelta(seconds=1), POLICY)
        assert not result.holds
        assert result.next_check == T0 + GRACE
        fired = unticketed_grant(view, T0 + GRACE, POLICY)
        assert fired.holds
        assert fired.evidence is not None
        assert fired.evidence.absent

    def test_approval_covers_the_grant_even_when_it_arrives_after_it(self) -> None:
        view = view_of(fold([grant(K, T0), approved(at=T0 + timedelta(seconds=1))], T0), K)
        assert not unticketed_grant(view, LATER, POLICY).holds

    def test_approval_of_a_stronger_privilege_covers_a_weaker_grant(self) -> None:
        repo = "github:repo:example/app"
        view = view_of(
            fold(
                [approved(key("github:user:dev", repo, "admin")), grant(key("github:user:dev", repo, "write"), T0)], T0
            ),
            key("github:user:dev", repo, "write"),
        )
        assert not unticketed_grant(view, LATER, POLICY).holds

    def test_rejected_or_revoked_grants_do_not_fire(self) -> None:
        rejected = ticket(K, TicketTransition.REJECTED, T0, ticket_id="t-1")
        view = view_of(fold([rejected, grant(K, T0)], T0), K)
        assert unticketed_grant(view, LATER, POLICY).holds
        revoked = view_of(fold([grant(K, T0), grant(K, T0 + timedelta(seconds=1), action=GrantAction.REVOKE)], T0), K)
        assert not unticketed_grant(revoked, LATER, POLICY).holds

    def test_the_record_holding_the_entitlement_counts_as_approval(self) -> None:
        view = view_of(fold([grant(K, T0), record(K, T0)], T0), K)
        assert not unticketed_grant(view, LATER, POLICY).holds

    def test_snapshot_listing_gets_no_grace(self) -> None:
        view = view_of(fold([grant(K, T0, snapshot_id="s-1")], T0), K)
        assert unticketed_grant(view, T0 + timedelta(milliseconds=1), POLICY).holds

    def test_a_regrant_after_a_closed_revocation_needs_a_new_approval(self) -> None:
        events = [
            approved(at=T0),
            grant(K, T0 + timedelta(minutes=1)),
            ticket(
                K,
                TicketTransition.CLOSED_COMPLETE,
                T0 + timedelta(minutes=5),
                ticket_id="r-1",
                kind=TicketKind.REVOCATION_REQUEST,
            ),
            grant(K, T0 + timedelta(minutes=6), action=GrantAction.REVOKE),
            grant(K, T0 + timedelta(minutes=30)),
        ]
        view = view_of(fold(events, T0), K)
        assert unticketed_grant(view, LATER, POLICY).holds
        assert not closed_not_removed(view, LATER, POLICY).holds

    def test_automation_and_scope_cases_are_left_to_their_own_rules(self) -> None:
        agent = Actor(id="okta:serviceaccount:bot", kind=IdentityKind.AI_AGENT, is_automation=True)
        view = view_of(fold([grant(K, T0, actor=agent)], T0), K)
        assert not unticketed_grant(view, LATER, POLICY).holds
        assert unreviewed_automated_change(view, LATER, POLICY).holds


class TestScopeExceedsApproval:
    repo = "github:repo:example/app"
    user = "github:user:dev"

    def test_grant_broader_than_the_approval_fires(self) -> None:
        granted = key(self.user, self.repo, "admin")
        view = view_of(fold([approved(key(self.user, self.repo, "read")), grant(granted, T0)], T0), granted)
        assert not scope_exceeds_approval(view, T0 + timedelta(seconds=1), POLICY).holds  # grace
        result = scope_exceeds_approval(view, LATER, POLICY)
        assert result.holds
        assert result.evidence is not None
        assert dict(result.evidence.facts) == {"granted_privilege": "admin", "approved_privileges": "read"}
        assert not unticketed_grant(view, LATER, POLICY).holds

    def test_incomparable_privileges_are_not_scope_but_unticketed(self) -> None:
        granted = key(self.user, self.repo, "custom-role")
        view = view_of(fold([approved(key(self.user, self.repo, "read")), grant(granted, T0)], T0), granted)
        assert not scope_exceeds_approval(view, LATER, POLICY).holds
        assert unticketed_grant(view, LATER, POLICY).holds

    def test_an_exact_approval_clears_it(self) -> None:
        granted = key(self.user, self.repo, "admin")
        events = [approved(key(self.user, self.repo, "read")), grant(granted, T0), approved(granted, ticket_id="t-2")]
        assert not scope_exceeds_approval(view_of(fold(events, T0), granted), LATER, POLICY).holds


class TestClosedNotRemoved:
    def test_closed_revocation_with_live_grant_fires_after_grace(self) -> None:
        closed = ticket(K, TicketTransition.CLOSED_COMPLETE, LATER, ticket_id="r-1", kind=TicketKind.REVOCATION_REQUEST)
        view = view_of(fold([approved(), grant(K, T0), closed], T0), K)
        early = closed_not_removed(view, LATER + timedelta(seconds=1), POLICY)
        assert not early.holds
        assert early.next_check == LATER + GRACE
        assert closed_not_removed(view, LATER + GRACE, POLICY).holds

    def test_cancelled_access_request_with_live_grant_fires(self) -> None:
        cancelled = ticket(K, TicketTransition.CLOSED_CANCELLED, LATER, ticket_id="t-1")
        view = view_of(fold([approved(), grant(K, T0 + timedelta(minutes=1)), cancelled], T0), K)
        assert closed_not_removed(view, LATER + GRACE, POLICY).holds
        assert not unticketed_grant(view, LATER + GRACE, POLICY).holds

    def test_offboarding_ticket_for_the_principal_covers_all_its_entitlements(self) -> None:
        other = key(USER, "okta:app:0oa1", "assigned")
        offboarding = ticket(
            None,
            TicketTransition.CLOSED_COMPLETE,
            LATER,
            ticket_id="o-1",
            kind=TicketKind.OFFBOARDING,
            requested_for=USER,
        )
        harness = fold([approved(), grant(K, T0), approved(other, ticket_id="t-2"), grant(other, T0), offboarding], T0)
        for k in (K, other):
            assert closed_not_removed(view_of(harness, k), LATER + GRACE, POLICY).holds

    def test_offboarding_ticket_naming_only_an_email_reaches_the_users_accounts(self) -> None:
        offboarding = ticket(
            None,
            TicketTransition.CLOSED_COMPLETE,
            LATER,
            ticket_id="o-2",
            kind=TicketKind.OFFBOARDING,
            requested_for="Alice@Example.com",
        )
        harness = fold([approved(), grant(K, T0), offboarding], T0)
        assert closed_not_removed(view_of(harness, K), LATER + GRACE, POLICY).holds

    def test_removed_or_reapproved_access_does_not_fire(self) -> None:
        closed = ticket(K, TicketTransition.CLOSED_COMPLETE, LATER, ticket_id="r-1", kind=TicketKind.REVOCATION_REQUEST)
        removed = view_of(fold([approved(), grant(K, T0), closed, grant(K, LATER, action=GrantAction.REVOKE)], T0), K)
        assert not closed_not_removed(removed, LATER + GRACE, POLICY).holds
        again = approved(at=LATER + timedelta(seconds=1), ticket_id="t-9")
        reapproved = view_of(fold([approved(), grant(K, T0), closed, again], T0), K)
        assert not closed_not_removed(reapproved, LATER + GRACE, POLICY).holds


class TestExpiry:
    def test_expired_and_live_fires_after_the_expiry_grace(self) -> None:
        view = view_of(fold([approved(until=LATER), grant(K, T0), record(K, T0, expires_at=LATER)], T0), K)
        before = expired_still_live(view, LATER, POLICY)
        assert not before.holds
        assert before.next_check == LATER + POLICY.expiry_grace
        assert expired_still_live(view, LATER + POLICY.expiry_grace, POLICY).holds
        assert not unticketed_grant(view, LATER + POLICY.expiry_grace, POLICY).holds

    def test_without_a_record_the_approvals_end_counts(self) -> None:
        view = view_of(fold([approved(until=LATER), grant(K, T0)], T0), K)
        assert expired_still_live(view, LATER + timedelta(minutes=1), POLICY).holds

    def test_a_revoke_in_flight_is_revoke_unconfirmeds_business(self) -> None:
        revoking = record(
            K,
            LATER,
            status=EntitlementStatus.REVOKING,
            change=EntitlementChange.REVOKE_REQUESTED,
            expires_at=LATER,
            revoke_confirm_by=LATER + timedelta(minutes=15),
            version=2,
        )
        view = view_of(fold([approved(until=LATER), grant(K, T0), revoking], T0), K)
        assert not expired_still_live(view, LATER + timedelta(minutes=1), POLICY).holds
        assert not revoke_unconfirmed(view, LATER + timedelta(minutes=1), POLICY).holds
        assert revoke_unconfirmed(view, LATER + timedelta(minutes=15), POLICY).holds

    def test_exception_access_past_its_window_is_exception_expired(self) -> None:
        exc = approved(kind=TicketKind.EXCEPTION, window_end=LATER)
        view = view_of(fold([exc, grant(K, T0)], T0), K)
        assert not exception_expired(view, LATER, POLICY).holds
        assert exception_expired(view, LATER + POLICY.expiry_grace, POLICY).holds
        assert not expired_still_live(view, LATER + POLICY.expiry_grace, POLICY).holds

    def test_exception_ended_by_expiry_or_converted_to_standing_access(self) -> None:
        ended = record(K, LATER, change=EntitlementChange.EXCEPTION_ENDED, ticket_kind="exception", version=2)
        view = view_of(
            fold(
                [approved(kind=TicketKind.EXCEPTION), grant(K, T0), record(K, T0, ticket_kind="exception"), ended], T0
            ),
            K,
        )
        assert exception_expired(view, LATER + POLICY.expiry_grace, POLICY).holds
        standing = view_of(
            fold(
                [
                    approved(kind=TicketKind.EXCEPTION, window_end=LATER),
                    grant(K, T0),
                    approved(ticket_id="t-2", at=T0 + timedelta(minutes=5)),
                ],
                T0,
            ),
            K,
        )
        assert not exception_expired(standing, LATER + timedelta(hours=1), POLICY).holds


class TestRevokeUnconfirmed:
    def test_expirys_announcement_fires_while_the_grant_is_live(self) -> None:
        unconfirmed = record(
            K, LATER, status=EntitlementStatus.REVOKING, change=EntitlementChange.REVOKE_UNCONFIRMED, version=2
        )
        view = view_of(fold([approved(), grant(K, T0), unconfirmed], T0), K)
        assert revoke_unconfirmed(view, LATER, POLICY).holds
        gone = view_of(fold([approved(), grant(K, T0), unconfirmed, grant(K, LATER, action=GrantAction.REVOKE)], T0), K)
        assert not revoke_unconfirmed(gone, LATER, POLICY).holds


class TestOwnership:
    nhi = IdentityKind.SERVICE_ACCOUNT

    def test_nhi_without_owner_fires_humans_do_not_by_default(self) -> None:
        view = view_of(
            fold(
                [approved(for_kind=self.nhi), grant(K, T0, kind=self.nhi), record(K, T0, kind=self.nhi, owner=None)], T0
            ),
            K,
        )
        assert no_owner(view, T0, POLICY).holds
        human = view_of(fold([approved(), grant(K, T0), record(K, T0, owner=None)], T0), K)
        assert not no_owner(human, T0, POLICY).holds
        assert no_owner(human, T0, replace(POLICY, owner_required_for="all")).holds

    def test_offboarded_owner_fires_until_the_owner_changes(self) -> None:
        base = [approved(for_kind=self.nhi), grant(K, T0, kind=self.nhi), record(K, T0, kind=self.nhi)]
        offboarded = record(K, LATER, kind=self.nhi, change=EntitlementChange.OWNER_OFFBOARDED, version=2)
        verified = record(K, LATER, kind=self.nhi, change=EntitlementChange.VERIFIED, version=3)
        view = view_of(fold([*base, offboarded, verified], T0), K)
        assert no_owner(view, LATER, POLICY).holds
        changed = record(
            K, LATER, kind=self.nhi, change=EntitlementChange.OWNER_CHANGED, owner="new@example.com", version=4
        )
        assert not no_owner(view_of(fold([*base, offboarded, verified, changed], T0), K), LATER, POLICY).holds

    def test_without_a_record_the_ticket_owner_counts_after_the_settle_grace(self) -> None:
        view = view_of(fold([approved(for_kind=self.nhi), grant(K, T0, kind=self.nhi)], T0), K)
        early = no_owner(view, T0 + timedelta(seconds=1), POLICY)
        assert not early.holds
        assert early.next_check == T0 + GRACE
        assert no_owner(view, T0 + GRACE, POLICY).holds
        owned = view_of(
            fold([approved(for_kind=self.nhi, owner="lead@example.com"), grant(K, T0, kind=self.nhi)], T0), K
        )
        assert not no_owner(owned, LATER, POLICY).holds

    def test_an_ungoverned_nhi_has_no_owner_but_an_ungoverned_person_is_left_to_unticketed(self) -> None:
        nhi = view_of(fold([grant(K, T0, kind=self.nhi)], T0), K)
        assert not no_owner(nhi, T0 + timedelta(seconds=1), POLICY).holds  # the record may still follow
        assert no_owner(nhi, T0 + GRACE, POLICY).holds
        person = view_of(fold([grant(K, T0)], T0), K)
        assert not no_owner(person, LATER, POLICY).holds


class TestNoExpiry:
    admin = key(USER, "okta:adminrole:SUPER_ADMIN", "assigned")

    def test_standing_admin_role_fires_unless_it_expires(self) -> None:
        view = view_of(fold([approved(self.admin), grant(self.admin, T0), record(self.admin, T0)], T0), self.admin)
        result = no_expiry(view, T0, POLICY)
        assert result.holds
        assert result.evidence is not None
        assert dict(result.evidence.facts)["policy"] == "resource matches okta:adminrole:*"
        ending = view_of(
            fold([approved(self.admin), grant(self.admin, T0), record(self.admin, T0, expires_at=LATER)], T0),
            self.admin,
        )
        assert not no_expiry(ending, T0, POLICY).holds

    def test_ordinary_membership_needs_no_expiry_unless_policy_covers_nhis(self) -> None:
        view = view_of(
            fold([approved(), grant(K, T0, kind=IdentityKind.BOT), record(K, T0, kind=IdentityKind.BOT)], T0), K
        )
        assert not no_expiry(view, T0, POLICY).holds
        assert no_expiry(view, T0, replace(POLICY, expiry_required_for_nhi=True)).holds


class TestRecertification:
    def test_overdue_announcement_or_due_date_fires_until_recertified(self) -> None:
        overdue = record(K, LATER, change=EntitlementChange.RECERTIFICATION_OVERDUE, recert_due=T0, version=2)
        view = view_of(fold([approved(), grant(K, T0), overdue], T0), K)
        assert recert_overdue(view, LATER, POLICY).holds
        recertified = record(
            K, LATER, change=EntitlementChange.RECERTIFIED, recert_due=LATER + timedelta(days=90), version=3
        )
        assert not recert_overdue(
            view_of(fold([approved(), grant(K, T0), overdue, recertified], T0), K), LATER, POLICY
        ).holds
        due = view_of(fold([approved(), grant(K, T0), record(K, T0, recert_due=LATER)], T0), K)
        before = recert_overdue(due, T0, POLICY)
        assert not before.holds
        assert before.next_check == LATER
        assert recert_overdue(due, LATER, POLICY).holds

    def test_an_approved_recertification_ticket_clears_it_before_the_record_catches_up(self) -> None:
        overdue = record(K, LATER, change=EntitlementChange.RECERTIFICATION_OVERDUE, recert_due=T0, version=2)
        recert = approved(ticket_id="rc-1", kind=TicketKind.RECERTIFICATION, at=LATER)
        assert not recert_overdue(
            view_of(fold([approved(), grant(K, T0), overdue, recert], T0), K), LATER, POLICY
        ).holds


class TestInactivePrincipal:
    def test_grant_after_deactivation_fires_grant_before_does_not(self) -> None:
        deactivated = status(USER, T0, PrincipalStatus.DEACTIVATED)
        after = view_of(fold([deactivated, approved(), grant(K, T0 + timedelta(minutes=1))], T0), K)
        assert grant_to_inactive_principal(after, T0, POLICY).holds
        before = view_of(fold([approved(), grant(K, T0 - timedelta(minutes=1)), deactivated], T0), K)
        assert not grant_to_inactive_principal(before, T0, POLICY).holds
        reactivated = status(USER, T0 + timedelta(minutes=5), PrincipalStatus.ACTIVE)
        assert not grant_to_inactive_principal(
            view_of(fold([deactivated, grant(K, T0 + timedelta(minutes=1)), reactivated], T0), K), LATER, POLICY
        ).holds

    def test_snapshot_listings_cannot_prove_a_grant_postdates_deactivation(self) -> None:
        view = view_of(fold([status(USER, T0, PrincipalStatus.SUSPENDED), grant(K, LATER, snapshot_id="s-1")], T0), K)
        assert not grant_to_inactive_principal(view, LATER, POLICY).holds

    def test_grant_after_a_closed_offboarding_ticket_fires(self) -> None:
        offboarding = ticket(
            None, TicketTransition.CLOSED_COMPLETE, T0, ticket_id="o-1", kind=TicketKind.OFFBOARDING, requested_for=USER
        )
        view = view_of(fold([offboarding, grant(K, LATER)], T0), K)
        assert grant_to_inactive_principal(view, LATER, POLICY).holds
        assert not unticketed_grant(view, LATER + timedelta(hours=1), POLICY).holds


class TestStaleCredential:
    token = key("okta:apitoken:00T1", "okta:org:example", "token")

    def credential(self, rotated: datetime | None = None, state: str = "active") -> CredentialFact:
        return CredentialFact(
            credential_id="00T1", credential_type="okta_api_token", created_at=T0, rotated_at=rotated, status=state
        )

    def test_older_than_policy_fires_rotation_clears(self) -> None:
        view = view_of(
            fold([grant(self.token, T0, kind=IdentityKind.API_TOKEN, credential=self.credential())], T0), self.token
        )
        limit = T0 + POLICY.credential_max_age
        before = stale_credential(view, limit - timedelta(seconds=1), POLICY)
        assert not before.holds
        assert before.next_check == limit
        assert stale_credential(view, limit, POLICY).holds
        rotated = grant(self.token, LATER, kind=IdentityKind.API_TOKEN, credential=self.credential(rotated=limit))
        assert not stale_credential(
            view_of(fold([grant(self.token, T0, credential=self.credential()), rotated], T0), self.token), limit, POLICY
        ).holds

    def test_inactive_credentials_are_not_stale(self) -> None:
        view = view_of(fold([grant(self.token, T0, credential=self.credential(state="inactive"))], T0), self.token)
        assert not stale_credential(view, T0 + timedelta(days=400), POLICY).holds


class TestFulfilmentMissing:
    def test_fulfilled_without_grant_fires_after_grace(self) -> None:
        fulfilled = ticket(K, TicketTransition.FULFILLED, LATER, ticket_id="t-1", version=2)
        view = view_of(fold([ticket(K, TicketTransition.APPROVED, T0, ticket_id="t-1", version=1), fulfilled], T0), K)
        assert not fulfilment_missing(view, LATER + timedelta(seconds=1), POLICY).holds
        result = fulfilment_missing(view, LATER + GRACE, POLICY)
        assert result.holds
        assert result.evidence is not None
        assert not result.evidence.include_grant

    def test_a_grant_that_appeared_even_if_removed_since_counts(self) -> None:
        events = [
            ticket(K, TicketTransition.APPROVED, T0, ticket_id="t-1", version=1),
            grant(K, T0 + timedelta(minutes=1)),
            ticket(K, TicketTransition.FULFILLED, T0 + timedelta(minutes=2), ticket_id="t-1", version=2),
            grant(K, T0 + timedelta(minutes=3), action=GrantAction.REVOKE),
        ]
        assert not fulfilment_missing(view_of(fold(events, T0), K), LATER, POLICY).holds


class TestUnreviewedAutomatedChange:
    agent = Actor(id="okta:serviceaccount:access-agent", kind=IdentityKind.AI_AGENT, is_automation=True)

    def test_agent_grant_without_human_approval_fires_after_grace(self) -> None:
        view = view_of(fold([grant(K, T0, actor=self.agent)], T0), K)
        assert not unreviewed_automated_change(view, T0 + timedelta(seconds=1), POLICY).holds
        result = unreviewed_automated_change(view, T0 + GRACE, POLICY)
        assert result.holds
        assert result.evidence is not None
        assert result.evidence.actor is not None
        assert result.evidence.actor.id == self.agent.id

    def test_human_approval_or_a_closeloop_command_makes_it_reviewed(self) -> None:
        assert not unreviewed_automated_change(
            view_of(fold([approved(), grant(K, T0, actor=self.agent)], T0), K), LATER, POLICY
        ).holds
        commanded = grant(K, T0, actor=self.agent, command_id="cmd-1")
        assert not unreviewed_automated_change(view_of(fold([commanded], T0), K), LATER, POLICY).holds

    def test_agent_revoke_needs_a_removal_ticket_or_a_closeloop_decision(self) -> None:
        revoke = grant(K, T0 + timedelta(minutes=1), action=GrantAction.REVOKE, actor=self.agent)
        view = view_of(fold([approved(), grant(K, T0), revoke], T0), K)
        assert unreviewed_automated_change(view, LATER, POLICY).holds
        closed = ticket(K, TicketTransition.CLOSED_COMPLETE, T0, ticket_id="r-1", kind=TicketKind.REVOCATION_REQUEST)
        assert not unreviewed_automated_change(
            view_of(fold([approved(), grant(K, T0), closed, revoke], T0), K), LATER, POLICY
        ).holds
