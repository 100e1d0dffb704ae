"""Exception classes. Configuration errors exit with code 2, data gate failures with 1."""


class Mongo2PgError(Exception):
    """Base class for errors the CLI reports as one clear line."""

    exit_code = 1


class ConfigError(Mongo2PgError):
    """Bad input from the operator: mapping, URI, options. Exit code 2."""

    exit_code = 2


class MappingError(ConfigError):
    """The mapping file is invalid; the message names the file, line and key (`where`, the key path, and
    `reason` are kept for callers that name the spot in their own terms, as from-prisma does)."""

    def __init__(self, message: str, where: tuple = (), reason: str = ""):
        super().__init__(message)
        self.where, self.reason = where, reason or message


class ConnectionFailed(ConfigError):
    """A server could not be reached or refused the credentials."""


class GuardTripped(Mongo2PgError):
    """A safety guard (error rate, free disk) stopped the run after a clean checkpoint."""


class TargetLost(GuardTripped):
    """The target went away and did not stay up within --retry-seconds; what it says now is in the message,
    and every committed batch is checkpointed."""
