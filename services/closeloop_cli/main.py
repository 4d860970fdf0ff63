"""`closeloop` — operator CLI. Each service contributes its own sub-commands; this only composes them."""

from __future__ import annotations

import typer

import closeloop_cli.directory as directory_cli
import closeloop_cli.dlq as dlq_cli
import connectors.cli as connectors_cli
import expiry.cli as expiry_cli
import provisioning.cli as provisioning_cli
import reconciliation.cli as reconciliation_cli
import request_intake.cli as intake_cli

app = typer.Typer(help="closeloop: the entitlement record, expiry and drift alerts.", no_args_is_help=True)

# Each service contributes its own sub-commands; mounted at the top level or under a name.
app.registered_groups.extend(provisioning_cli.app.registered_groups)  # entitlements, evidence, audit, manual
app.registered_commands.extend(provisioning_cli.app.registered_commands)  # attest
app.registered_groups.extend(connectors_cli.app.registered_groups)  # snapshot
app.registered_commands.extend(connectors_cli.app.registered_commands)  # replay
app.add_typer(reconciliation_cli.app, name="alerts")
app.add_typer(expiry_cli.app, name="expiry")
app.add_typer(intake_cli.app, name="intake")
app.add_typer(dlq_cli.app, name="dlq")
app.add_typer(directory_cli.identities_app, name="identities")
app.add_typer(directory_cli.identities_app, name="aliases", hidden=True)  # the earlier name of `identities`
app.add_typer(directory_cli.catalog_app, name="catalog")


if __name__ == "__main__":
    app()
