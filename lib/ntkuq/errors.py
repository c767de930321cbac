"""Every exception and warning class of ntkuq, in one place.

Each error says what was wrong and what would work; the classes let a caller catch one kind of
failure.  Errors about bad arguments subclass ValueError (and TypeError for a wrong kind of value),
so ``except ValueError`` catches every refusal of bad input.
"""
from __future__ import annotations


class InputTypeError(TypeError, ValueError):
    """A parameter of the wrong kind (e.g. a string or bool where a number is expected)."""


class TooLargeError(ValueError):
    """The requested computation would exceed the memory or time budget; the message says what would fit."""


class NotPositiveDefinite(ValueError):
    """The NNGP kernel of an NTK-only sweep could not be factored (the caller falls back to direct solves)."""


class DataError(ValueError):
    """A data file that cannot be used as given, with the reason and where it was found."""


class DataUnavailableError(RuntimeError):
    """A data file is neither in $NTKUQ_DATA_DIR nor in the cache, and could not be downloaded."""


class DataIntegrityError(ValueError):
    """A data file is corrupted: wrong SHA256, truncated, or not in the expected format."""


class PresetError(ValueError):
    """A preset names an unknown chapter or parameter, gives a value of the wrong type, or cannot be written."""


class TrainingInterrupted(RuntimeError):
    """A training run reached its checkpoint's deadline; its state is saved and a rerun continues from it."""


class CheckpointWarning(UserWarning):
    """A training snapshot belonged to another run or could not be read; it was set aside, training starts over."""


class PointFileWarning(UserWarning):
    """A point file was truncated, edited or foreign; it was set aside and its point will be recomputed."""


__all__ = ["CheckpointWarning", "DataError", "DataIntegrityError", "DataUnavailableError", "InputTypeError",
           "NotPositiveDefinite", "PointFileWarning", "PresetError", "TooLargeError", "TrainingInterrupted"]
