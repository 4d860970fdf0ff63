"""The `closeloop` operator command: one entry point composed of each service's sub-commands."""
