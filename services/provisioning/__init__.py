"""provisioning: keeps the entitlement record and turns approved tickets into provisioning commands.

Consumes ticket events (itsm.tickets.v1) and grant events (iam.grants.v1); emits entitlement events
(entitlements.v1) and provisioning commands (provisioning.commands.v1) through the transactional
outbox; runs the IAM executors that carry out the commands.
"""
