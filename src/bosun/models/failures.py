"""One wording of a failed model call for every provider, so the router, the journal and
a person read the same classes (`error_type`) whichever SDK raised."""

from __future__ import annotations

from bosun.errors import ModelError

# The request itself is wrong: another endpoint or a retry will not help.
FATAL = frozenset({"bad_request", "script_exhausted", "malformed_response", "auth_error"})


def redact(text: str, key: str) -> str:
    return text.replace(key, "***") if key and len(key) >= 4 else text


def timeout(where: str, seconds: float, tries: int) -> ModelError:
    return ModelError(
        f"{where} did not answer within {seconds:g} s ({tries} attempts); "
        "raise model.timeout or check the server",
        error_type="timeout",
        retryable=True,
    )


def connection(where: str, cause: str, tries: int) -> ModelError:
    return ModelError(
        f"could not connect to {where} ({tries} attempts): {cause}; "
        "check base_url and that the server is running",
        error_type="connection_error",
        retryable=True,
    )


def malformed(where: str, api: str, what: str) -> ModelError:
    return ModelError(
        f"{where} sent a malformed {api} answer: {what}; check that base_url points at "
        f"an endpoint that speaks the {api} API",
        error_type="malformed_response",
    )


def status(
    where: str, code: int, server: str, *, tries: int, key_env: str, key_set: bool
) -> ModelError:
    if code in (401, 403):
        state = "is set" if key_set else "is not set"
        return ModelError(
            f"{where} refused the API key (HTTP {code}: {server}); the key is read from the "
            f"environment variable {key_env}, which {state}: set {key_env} to a valid key "
            "(or point model.api_key_env at the variable that holds it)",
            error_type="auth_error",
        )
    if code == 429:
        return ModelError(
            f"{where} is rate limiting us (HTTP 429 after {tries} attempts): {server}; "
            "lower the load or raise model.max_retries",
            error_type="rate_limited",
            retryable=True,
        )
    if code >= 500:
        return ModelError(
            f"{where} failed with HTTP {code} ({tries} attempts): {server}",
            error_type="server_error",
            retryable=True,
        )
    return ModelError(
        f"{where} rejected the request (HTTP {code}): {server}", error_type="bad_request"
    )
