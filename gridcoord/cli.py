"""The `gridcoord` command line (docs/cli.md). Each command's work lives in its own module."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Smart-grid coordination: telemetry ingest, EV charging optimisation, safe dispatch.",
)

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


@app.command()
def optimize(
    problem: Annotated[Path, typer.Argument(help="Problem JSON (docs/optimizer.md).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the schedule here, not stdout.")
    ] = None,
) -> None:
    """Solve one charging problem; the schedule JSON goes to stdout or --output."""
    from gridcoord.optimize_command import optimize_command

    raise typer.Exit(optimize_command(problem, output))


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
) -> None:
    """A simulated city end to end on embedded defaults; KPIs against uncontrolled charging."""
    from gridcoord.demo.command import demo_command

    raise typer.Exit(demo_command(hours=hours, speed=speed, json_output=json_output))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
