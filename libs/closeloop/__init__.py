"""closeloop shared library: contracts, settings, logging, Kafka and PostgreSQL plumbing."""

__version__ = "0.1.0"
