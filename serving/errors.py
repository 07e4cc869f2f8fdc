"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``, from one place.

Routes raise :class:`ApiError`; a pydantic validation error becomes one through :func:`invalid`, which
names the first bad field (``messages.0.content``) as ``param`` and says how to fix it. FastAPI's own
request validation errors take the same path, so no client ever sees FastAPI's default error shape.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError


class ApiError(Exception):
    """Becomes an OpenAI-shaped error body with ``status``."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"message": self.message, "type": self.type, "param": self.param,
                                       "code": self.code}}, status_code=self.status, headers=self.headers)


def invalid(exc: ValidationError | RequestValidationError, status: int = 400) -> ApiError:
    """The first error of a validation failure, as an ApiError naming the field."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if p != "body"]
    field = ".".join(loc) or "body"
    if err["type"] == "missing":
        msg = "missing; add it"
    elif err["type"] == "extra_forbidden":
        msg = "unknown field; remove it"
    elif err["type"] == "value_error":
        msg = str(err["ctx"]["error"])
    else:
        msg = err["msg"]
    return ApiError(status, f"{field}: {msg}", param=field)


def install(app: FastAPI) -> None:
    """The app's error handlers: ApiError as it is, validation errors through :func:`invalid`."""

    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid(exc).response()

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
