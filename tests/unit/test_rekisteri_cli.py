"""`rekisteri` starts fast: a command imports what it runs, not every command's dependencies,
and `rekisteri --help` still lists every command with its help."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from rekisteri.cli import COMMANDS, main

# Run in a fresh interpreter: this one has imported the services long since.
_RUN_AND_LIST_MODULES = """
import json, sys
from click.testing import CliRunner
from rekisteri.cli import main
result = CliRunner().invoke(main, sys.argv[1:])
print(json.dumps({"output": result.output, "exit_code": result.exit_code,
                  "modules": sorted(sys.modules)}))
"""


def run_fresh(*arguments: str) -> dict[str, object]:
    """`rekisteri ARGUMENTS` in a new interpreter: its output, exit code and imported modules."""
    completed = subprocess.run(
        [sys.executable, "-c", _RUN_AND_LIST_MODULES, *arguments],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(completed.stdout)


@pytest.fixture
def refusing_address() -> Iterator[str]:
    """An AMQP URL whose port is bound but not listening: connecting is refused at once."""
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        yield f"amqp://guest:guest@127.0.0.1:{reserved.getsockname()[1]}/"


def test_providers_list_runs_without_importing_faststream(refusing_address: str) -> None:
    ran = run_fresh("--rabbitmq-url", refusing_address, "--timeout", "1", "providers", "list")

    # It got as far as connecting, so the whole path to the broker was imported.
    assert ran["exit_code"] == 1
    assert "cannot reach RabbitMQ" in str(ran["output"])
    modules = set(ran["modules"])  # type: ignore[arg-type]
    assert not {name for name in modules if name.split(".")[0] == "faststream"}
    assert "shared.topology" not in modules
    # Nor the other command groups, nor what only they need.
    assert not modules & {"rekisteri.tls", "rekisteri.report", "cryptography"}


def test_help_lists_every_command_without_importing_any() -> None:
    ran = run_fresh("--help")

    assert ran["exit_code"] == 0
    listed = str(ran["output"]).split("Commands:")[1]
    for name in COMMANDS:
        assert f"\n  {name} " in listed
    imported = {where.module for where in COMMANDS.values()} & set(ran["modules"])  # type: ignore[arg-type]
    assert not imported


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_is_listed_with_its_own_help(name: str) -> None:
    command = main.get_command(click.Context(main), name)

    assert command is not None
    assert command.name == name
    assert command.get_short_help_str(limit=10_000) == COMMANDS[name].short_help


@pytest.mark.parametrize("width", [50, 80])
def test_help_reads_as_if_every_command_were_loaded(width: int) -> None:
    eager = click.Group(
        main.name,
        commands=[main.get_command(click.Context(main), name) for name in COMMANDS],
        params=main.params,
        help=main.help,
    )

    def help_of(group: click.Group) -> str:
        shown = CliRunner().invoke(group, ["--help"], prog_name="rekisteri", terminal_width=width)
        return shown.output

    assert help_of(main) == help_of(eager)


def test_an_unknown_command_is_refused() -> None:
    result = CliRunner().invoke(main, ["providerz", "list"])

    assert result.exit_code == 2
    assert "No such command 'providerz'" in result.output
