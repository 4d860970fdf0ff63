"""Reconciliation: joins tickets, grants and the entitlement record per entitlement and raises drift alerts."""
