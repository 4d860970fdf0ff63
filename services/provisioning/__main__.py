"""`python -m provisioning`: run the provisioning service until SIGTERM/SIGINT."""

from closeloop.runtime import run
from provisioning.bootstrap import bootstrap

if __name__ == "__main__":
    run(bootstrap)
