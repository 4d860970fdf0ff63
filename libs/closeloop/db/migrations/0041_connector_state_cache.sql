-- Connectors: the last known state of vendor objects whose removal events do not repeat what is removed.
-- Kubernetes deletes a RoleBinding by name only, so the binding's subjects and roleRef are cached from its
-- create / update / patch and read back to emit the right revokes. The same cache holds AWS role trust
-- policies, Vault role / group policy lists and Vault token accessors. `observed_at` is the vendor time of
-- the record that produced the state: an older record never overwrites a newer state (out-of-order delivery).

CREATE TABLE connector_state_cache (
    source      text        NOT NULL,  -- connector source: k8s, cloudtrail, vault
    object_key  text        NOT NULL,  -- e.g. "rbac:<cluster>/clusterrolebindings/<name>"
    state       jsonb,                 -- null once the object was deleted (a tombstone, kept for ordering)
    observed_at timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, object_key)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON connector_state_cache TO closeloop_app;
