"""The one user-facing error type.

Every failure a user can cause or fix (bad card, unknown character, missing
backend library) is raised as `RolecraftError`. The CLI prints `message` and
exits non-zero; the server renders it as an OpenAI-shaped error object using
`status`, `type`, `code` and `param`. Nothing matches on exception text.
"""

from __future__ import annotations


class RolecraftError(Exception):
    """An error meant for the user, with enough structure to render anywhere."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid_request",
        param: str | None = None,
        status: int = 400,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.status = status
        self.type = type

    def to_openai(self) -> dict:
        """The OpenAI error object: {"error": {message, type, param, code}}."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def not_found(what: str, ident: str) -> RolecraftError:
    """A uniform 'unknown X' error."""
    return RolecraftError(f"unknown {what}: {ident!r}", code=f"{what}_not_found", status=404, param=what)


def missing_extra(package: str, extra: str) -> RolecraftError:
    """Error for a lazily imported backend library that is not installed."""
    return RolecraftError(
        f"the '{package}' package is needed for this; install it with: pip install 'rolecraft[{extra}]'",
        code="missing_dependency",
        status=501,
        type="server_error",
    )
