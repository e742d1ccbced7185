"""Exceptions whose messages are written for the user, not for a traceback reader."""


class BattlabError(Exception):
    """Base class: an error whose message is meant for the user."""


class DataFileError(BattlabError):
    """A file cannot be read as a table (malformed, empty, binary, missing column)."""


class DatasetError(BattlabError):
    """A dataset cannot be found, fetched or verified."""
