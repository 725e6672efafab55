"""The project's error types for bad user input.

Every message is meant for a person: it names the thing (file, dataset, option), what was expected,
what was found and, where possible, the fix. The CLI prints these as one line and exits non-zero;
the dashboard shows them with ``st.error``. Anything *not* derived from :class:`DecodingError` is
a bug.
"""

from __future__ import annotations

__all__ = [
    "DecodingError",
    "RecordingError",
    "AtlasError",
    "ModelError",
    "CheckpointError",
    "ImportError_",
    "SalienceError",
]


class DecodingError(Exception):
    """Bad user input (file, option, model name...). The message is user-facing."""


class RecordingError(DecodingError):
    """A recording file or array is missing, malformed or inconsistent."""


class AtlasError(DecodingError):
    """An atlas file or region table is missing or malformed."""


class ModelError(DecodingError):
    """An unknown backbone name, missing weights or an impossible model configuration."""


class CheckpointError(DecodingError):
    """A checkpoint folder is missing, corrupt, or does not match the recording."""


class ImportError_(DecodingError):  # noqa: N801, N818 - not shadowing the builtin
    """A lab-format importer refused its input."""


class SalienceError(DecodingError):
    """An attribution request that cannot be computed as asked."""
