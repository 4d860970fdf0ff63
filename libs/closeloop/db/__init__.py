"""PostgreSQL: connection pools and ordered SQL migrations."""

from closeloop.db.pool import create_pool

__all__ = ["create_pool"]
