"""expiry: machine-enforced TTL expiry, revocation triggers, recertification and revoke-confirmation deadlines."""
