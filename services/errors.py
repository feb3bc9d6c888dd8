"""One error hierarchy; each subclass says whether the caller may retry."""

from __future__ import annotations


class HubError(Exception):
    retriable: bool = False


class BrokerUnavailableError(HubError):
    """Kafka did not acknowledge in time: nothing can be promised to the caller, who may retry."""

    retriable = True


class AuthError(HubError):
    """A credential is missing, malformed, forged or not allowed to do this."""


class ConfigError(HubError):
    """Settings, directory or input files are wrong; fix and restart."""


class LocalKafkaError(HubError):
    """The local development broker could not be fetched, formatted or started."""
