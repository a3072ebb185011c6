"""Domain errors shared by every layer.

Each error carries an MLflow ``error_code``; the server maps codes to HTTP statuses in one
place, so nothing below the server knows about HTTP.
"""

from __future__ import annotations


class LabtrackError(Exception):
    """Base class: ``error_code`` is one of MLflow's ``ErrorCode`` names."""

    error_code = "INTERNAL_ERROR"

    def __init__(self, message: str, error_code: str | None = None):
        super().__init__(message)
        self.message = message
        if error_code is not None:
            self.error_code = error_code

    def to_dict(self) -> dict[str, str]:
        """The JSON body MLflow's server sends for this error."""
        return {"error_code": self.error_code, "message": self.message}


class InvalidParameterValue(LabtrackError):
    error_code = "INVALID_PARAMETER_VALUE"


class ResourceDoesNotExist(LabtrackError):
    error_code = "RESOURCE_DOES_NOT_EXIST"


class ResourceAlreadyExists(LabtrackError):
    error_code = "RESOURCE_ALREADY_EXISTS"


class InvalidState(LabtrackError):
    error_code = "INVALID_STATE"


class ParamValueConflict(InvalidParameterValue):
    """A param is write-once: logging a different value for an existing key."""

    def __init__(self, run_id: str, key: str, old_value: str, new_value: str):
        super().__init__(
            "Changing param values is not allowed. Param with key="
            f"'{key}' was already logged with value='{old_value}' for run ID='{run_id}'. "
            f"Attempted logging new value '{new_value}'."
        )
        self.run_id = run_id
        self.key = key
        self.old_value = old_value
        self.new_value = new_value
