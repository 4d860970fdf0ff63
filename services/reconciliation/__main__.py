"""`python -m reconciliation`: run the reconciler (and the SOC webhook sink when configured)."""

from closeloop.runtime import run
from reconciliation.bootstrap import bootstrap

if __name__ == "__main__":
    run(bootstrap)
