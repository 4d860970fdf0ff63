"""`python -m expiry`: run the expiry service until SIGTERM/SIGINT."""

from closeloop.runtime import run
from expiry.bootstrap import bootstrap

if __name__ == "__main__":
    run(bootstrap)
