"""`python -m request_intake` runs the service until SIGTERM/SIGINT."""

from closeloop.runtime import run
from request_intake.bootstrap import bootstrap

if __name__ == "__main__":
    run(bootstrap)
