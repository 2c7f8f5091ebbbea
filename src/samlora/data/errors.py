"""Errors of the data layer; each message names the file, URL or key at fault."""

from __future__ import annotations


class UnknownDatasetError(KeyError):
    """A dataset id that the registry does not know."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class MissingFilesError(FileNotFoundError):
    """Files the official layout must hold are absent (the message lists them)."""


class RegistrationRequiredError(FileNotFoundError):
    """A dataset that needs registration was neither mirrored nor placed by the user."""


class ChecksumError(ValueError):
    """A download's SHA-256 differs from the registry's or the lock file's."""


class UnsafeArchiveError(ValueError):
    """An archive member would land outside the extraction folder."""


class CorruptArchiveError(ValueError):
    """An archive cannot be read: truncated, damaged, or not a zip/tar file at all."""


class DownloadError(OSError, RuntimeError):
    """A download failed (no network, an HTTP error status, a connection dropped mid-body).

    An ``OSError`` as network failures are, and a ``RuntimeError`` so that the CLI reports
    its one-line message instead of a traceback.
    """


class ImageReadError(ValueError):
    """An image file is corrupt, truncated or not an image."""


class SizeMismatchError(ValueError):
    """A mask or FOV mask does not have its image's height and width."""


class LabelFormatError(ValueError):
    """A label file (polygon JSON, contour text, .mat, label map) lacks what its format needs."""
