"""`closeloop` — operator CLI. Each service contributes its own sub-commands; this only composes them."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="closeloop: the entitlement record, expiry and drift alerts.", no_args_is_help=True)

# (module with a `app` Typer, name it is mounted under; None mounts its commands at the top level)
SUBCOMMANDS: tuple[tuple[str, str | None], ...] = (
    ("provisioning.cli", None),  # entitlements, evidence, audit, attest
    ("connectors.cli", None),  # replay, snapshot
    ("reconciliation.cli", "alerts"),
    ("expiry.cli", "expiry"),
    ("request_intake.cli", "intake"),
)

for module_name, mount in SUBCOMMANDS:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:  # a real import error inside the module must surface
            raise
        continue
    sub = module.app
    if mount is None:
        app.registered_groups.extend(sub.registered_groups)
        app.registered_commands.extend(sub.registered_commands)
    else:
        app.add_typer(sub, name=mount)


if __name__ == "__main__":
    app()
