"""One error tree: each layer raises a LabError subclass; only lab.cli turns it into an exit code."""

from __future__ import annotations


class LabError(Exception):
    """Base of every error a user can act on: a message naming the place, and an optional next step."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class TopologyError(LabError):
    """The topology file is malformed or breaks an Azure rule; nothing was created."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None, findings: list[str] | None = None) -> None:
        super().__init__(message, hint)
        self.findings = findings or [message]


class RuntimeBackendError(LabError):
    """Docker, links or the host could not do what the lab needs."""

    exit_code = 3


class OptionError(LabError):
    """A command-line option asks for what this host cannot do (`lab up --dataplane kernel` without esp4);
    nothing was created."""

    exit_code = 2


class ControlError(LabError):
    """charon did not do what it was told over vici (tunnel stuck, load refused)."""

    exit_code = 4


class ProbeError(LabError):
    """A probe or check could not run at all (distinct from a check that ran and failed)."""

    exit_code = 2


class BusyError(LabError):
    """Another lab command owns this lab name right now (or the lab already runs): nothing was touched."""

    exit_code = 2


class DeviceConfigError(LabError):
    """A user's own device config does not parse (strongSwan's parser said where); the lab was removed."""

    exit_code = 1
