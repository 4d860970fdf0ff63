"""Correlation: one identity graph (every name a person or workload goes by, across systems) and one resource
catalog (every resource's canonical id with its display names and aliases), and the resolution of references as
people write them (an email, a login, a group's name, `acme/payments`) to canonical keys.

Pure in-memory structures (`IdentityGraph`, `ResourceCatalog`, `Directory`) serve the hot paths; `store`
persists both in PostgreSQL; `contracts.directory` announces them on compacted Kafka topics.
"""

from closeloop.identity.catalog import CatalogEntry, ResourceCatalog
from closeloop.identity.correlation import CorrelationRule, parse_rules
from closeloop.identity.directory import Directory, Outcome, Resolution
from closeloop.identity.graph import OPERATOR, RULE, IdentityGraph, LinkConflict

__all__ = [
    "OPERATOR",
    "RULE",
    "CatalogEntry",
    "CorrelationRule",
    "Directory",
    "IdentityGraph",
    "LinkConflict",
    "Outcome",
    "Resolution",
    "ResourceCatalog",
    "parse_rules",
]
