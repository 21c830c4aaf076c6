"""Errors a user can act on. The CLI prints them without a traceback; the panel shows them as messages."""


class LipSyncError(Exception):
    """Base class: the message names the file or field and says what to do."""


class MediaError(LipSyncError):
    """A plate or audio file cannot be read or written as asked."""


class FaceError(LipSyncError):
    """Face analysis cannot proceed (no face, bad face choice)."""


class ShotError(LipSyncError):
    """A shot sidecar is malformed; the message names the field."""


class ModelError(LipSyncError):
    """A checkpoint is missing, unsafe, or does not match the config it is loaded with."""
