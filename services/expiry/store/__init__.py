"""SQL of the expiry service: candidate selection for each sweep phase, and expiry's own bookkeeping.

`sweeps` selects what fell due (revokes, notices, recertification stages), `followups` tracks revokes
awaiting confirmation, `triggers` stores revocation triggers and finds the records they reach. Entitlement
rows are only ever *changed* through closeloop.record.
"""

from expiry.store.followups import (
    ConfirmationCandidate,
    confirmation_candidates,
    last_revoke_command,
    mark_exception_ended,
    open_followup,
    record_resend,
    stop_followup,
)
from expiry.store.sweeps import (
    due_revokes,
    handled_notices,
    handled_stages,
    mark_notice,
    mark_stage,
    next_expiry,
    notice_candidates,
    recert_candidates,
)
from expiry.store.triggers import (
    StoredTrigger,
    complete_trigger,
    count_trigger_progress,
    expand_identities,
    flag_owner,
    held_by,
    in_project,
    open_triggers,
    owned_by,
    record_trigger,
    trigger_by_source_event,
    try_lock_trigger,
    unlock_trigger,
)

__all__ = [
    "ConfirmationCandidate",
    "StoredTrigger",
    "complete_trigger",
    "confirmation_candidates",
    "count_trigger_progress",
    "due_revokes",
    "expand_identities",
    "flag_owner",
    "handled_notices",
    "handled_stages",
    "held_by",
    "in_project",
    "last_revoke_command",
    "mark_exception_ended",
    "mark_notice",
    "mark_stage",
    "next_expiry",
    "notice_candidates",
    "open_followup",
    "open_triggers",
    "owned_by",
    "recert_candidates",
    "record_resend",
    "record_trigger",
    "stop_followup",
    "trigger_by_source_event",
    "try_lock_trigger",
    "unlock_trigger",
]
