-- One index per due sweep's ORDER BY, so each batch of `... ORDER BY <due>, key LIMIT n FOR UPDATE SKIP
-- LOCKED` reads the first n due rows off the index instead of sorting every remaining due row (a mass
-- expiry of 100k rows otherwise sorts the whole remainder once per batch). The predicates are exactly
-- the sweeps' status filters; each replaces the single-column index it extends (same leading column and
-- predicate, so `next_expiry`'s min() lookups keep an index), keeping the write cost per revoke the same.
--   expiry (and expiry notices): status IN ('pending', 'active') ORDER BY expires_at, key
--   break-glass window end:      status IN ('pending', 'active') ORDER BY exception_window_end, key
--   revoke confirmations:        status IN ('revoking', 'expired') ORDER BY revoke_confirm_by, key

CREATE INDEX entitlements_expiry_due_idx ON entitlements (expires_at, key)
    WHERE status IN ('pending', 'active');
DROP INDEX entitlements_expiry_live_idx;

CREATE INDEX entitlements_exception_due_idx ON entitlements (exception_window_end, key)
    WHERE status IN ('pending', 'active');
DROP INDEX entitlements_exception_end_idx;

CREATE INDEX entitlements_confirm_due_idx ON entitlements (revoke_confirm_by, key)
    WHERE status IN ('revoking', 'expired');
DROP INDEX entitlements_revoke_due_idx;
