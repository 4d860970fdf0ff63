"""IAM connectors: vendor audit records (Okta, Entra ID, AWS CloudTrail, GitHub, Kubernetes, Vault) in,
normalized `GrantEvent`s and `PrincipalStatusChanged` out on `iam.grants.v1`.

Each source has a pure parse function (`connectors.okta.parse`, ...); ingress (HTTP hooks, raw topics,
replay) normalizes the vendor envelope, deduplicates by vendor record id and publishes durably.
"""
