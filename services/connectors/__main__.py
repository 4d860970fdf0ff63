"""`python -m connectors`: IAM hooks on 127.0.0.1:8481 (with /healthz /readyz /metrics) and raw-topic consumers."""

from closeloop.runtime import run
from connectors.bootstrap import bootstrap

if __name__ == "__main__":
    run(bootstrap)
