"""The `gridcoord` command line (docs/cli.md). Each command's work lives in its own module."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class LogLevel(StrEnum):
    """Log levels the command line accepts."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogFormatChoice(StrEnum):
    """How log records are written."""

    TEXT = "text"
    JSON = "json"


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Smart-grid coordination: telemetry ingest, EV charging optimisation, safe dispatch.",
)


def _version(value: bool) -> None:
    if value:
        from gridcoord import __version__

        typer.echo(f"gridcoord {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    log_level: Annotated[
        LogLevel | None,
        typer.Option("--log-level", help="debug, info, warning or error (default per command)."),
    ] = None,
    log_format: Annotated[
        LogFormatChoice,
        typer.Option("--log-format", help="text, or json (one object per line)."),
    ] = LogFormatChoice.TEXT,
) -> None:
    """Options for every command (give them before the command)."""
    from gridcoord.logging_setup import set_defaults

    set_defaults(log_level.value if log_level else None, log_format.value)


ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="Deployment configuration (YAML).")
]


@app.command("check-config")
def check_config(
    file: Annotated[Path, typer.Argument(help="Configuration file to check.")],
) -> None:
    """Validate a configuration; print every error with its path in the file (exit 2)."""
    from gridcoord.config import load_config
    from gridcoord.config_errors import ConfigError

    try:
        config = load_config(file)
    except ConfigError as exc:
        typer.echo(exc.report(), err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{file}: valid ({len(config.zones)} zones, {len(config.assets)} assets, "
        f"storage {config.storage.kind.value})"
    )


@app.command()
def run(config: ConfigOption) -> None:
    """Run the service until SIGINT/SIGTERM; then drain buffers and exit 0."""
    from gridcoord.config import load_config
    from gridcoord.config_errors import ConfigError

    try:
        settings = load_config(config)
    except ConfigError as exc:
        # Refused before the service (and its forecasting stack) is even imported.
        typer.echo(exc.report(), err=True)
        raise typer.Exit(2) from None
    from gridcoord.service import run_service

    raise typer.Exit(run_service(config, settings))


@app.command("api-token")
def api_token(
    name: Annotated[str, typer.Option("--name", help="Who holds it (a role or pseudonym).")],
    role: Annotated[str, typer.Option("--role", help="viewer, operator or admin.")] = "viewer",
) -> None:
    """Make an API token: the token (give it to its holder) and its hash (for api.tokens)."""
    from adapters.contract.asset import ASSET_ID_RE
    from gridcoord.api.auth import new_token
    from gridcoord.config import Role

    if role not in {r.value for r in Role}:
        typer.echo(f"api-token: --role must be viewer, operator or admin, got {role!r}", err=True)
        raise typer.Exit(2)
    if not ASSET_ID_RE.match(name):
        typer.echo("api-token: --name must be lowercase letters, digits, '.', '_', '-'", err=True)
        raise typer.Exit(2)
    token, hashed = new_token()
    typer.echo(f"token: {token}")
    typer.echo("config (api.tokens):")
    typer.echo(f"  - {{name: {name}, role: {role}, hash: '{hashed}'}}")


@app.command()
def optimize(
    problem: Annotated[Path, typer.Argument(help="Problem JSON (docs/optimizer.md).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the schedule here, not stdout.")
    ] = None,
    time_limit: Annotated[
        float,
        typer.Option(
            "--time-limit",
            help="Budget of the solve [s]; the best plan found by then is returned.",
        ),
    ] = 60.0,
) -> None:
    """Solve one charging problem; the schedule JSON goes to stdout or --output."""
    from gridcoord.optimize_command import optimize_command

    raise typer.Exit(optimize_command(problem, output, time_limit_s=time_limit))


@app.command()
def simulate(config: ConfigOption) -> None:
    """Run only the simulated field devices of a configuration."""
    from gridcoord.simulate_command import simulate_command

    raise typer.Exit(simulate_command(config))


@app.command()
def demo(
    hours: Annotated[
        float | None, typer.Option("--hours", help="Stop after this many simulated hours.")
    ] = None,
    speed: Annotated[
        float,
        typer.Option(
            "--speed", help="Simulated seconds per real second (0 = as fast as possible)."
        ),
    ] = 480.0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the final KPIs as JSON (with --hours).")
    ] = False,
    season: Annotated[
        str,
        typer.Option(
            "--season", help="winter, spring or summer: the simulated days' time of year."
        ),
    ] = "spring",
    seed: Annotated[
        int, typer.Option("--seed", help="The city's seed: layout, weather, loads and cars.")
    ] = 1,
) -> None:
    """A simulated city end to end on embedded defaults, with the perfect-foresight bound."""
    from gridcoord.demo.command import demo_command

    raise typer.Exit(
        demo_command(hours=hours, speed=speed, json_output=json_output, season=season, seed=seed)
    )


@app.command("broker-config")
def broker_config(
    config: ConfigOption,
    out: Annotated[Path, typer.Option("--out", help="Directory for the broker's files.")],
    rotate: Annotated[
        bool, typer.Option("--rotate", help="New passwords instead of the kept ones.")
    ] = False,
    broker_dir: Annotated[
        str | None,
        typer.Option("--broker-dir", help="--out as the broker sees it (e.g. /mosquitto/config)."),
    ] = None,
    data_dir: Annotated[
        str | None,
        typer.Option("--data-dir", help="The broker's persistence directory as it sees it."),
    ] = None,
) -> None:
    """Mosquitto passwd, acl, mosquitto.conf and device credentials from the asset list."""
    from pathlib import PurePosixPath

    from gridcoord.broker.command import broker_config_command

    raise typer.Exit(
        broker_config_command(
            config,
            out,
            rotate=rotate,
            broker_dir=PurePosixPath(broker_dir) if broker_dir else None,
            data_dir=PurePosixPath(data_dir) if data_dir else None,
        )
    )


@app.command("privacy-retention")
def privacy_retention(
    config: ConfigOption,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be aggregated and deleted.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Aggregate and delete raw household and charger series past privacy.raw_retention_days."""
    from gridcoord.privacy.retention_command import retention_command

    raise typer.Exit(retention_command(config, dry_run=dry_run, json_output=json_output))


@app.command("export-open-data")
def export_open_data(
    config: ConfigOption,
    first: Annotated[
        str, typer.Option("--from", help="First local day (site.timezone), e.g. 2026-11-01.")
    ],
    last: Annotated[str, typer.Option("--to", help="Last local day, included.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the CSV and metadata.")],
) -> None:
    """Per-zone aggregates as CSV with DCAT-AP.de metadata; small groups merged or suppressed."""
    from gridcoord.open_data.command import export_command

    raise typer.Exit(export_command(config, first, last, out))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
