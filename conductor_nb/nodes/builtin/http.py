"""``http-request``: one HTTP call with httpx (async), for http and https URLs only.

The output is ``{status, headers, body, url}``; ``body`` is parsed JSON when the
response says it is JSON, else text (or bytes with ``response: bytes``). A
status outside 2xx fails the node unless ``allowErrors`` is set, so a broken
upstream does not silently feed its error page downstream. That error stays
one line with a short preview of the body; the whole response is the
exception's ``response`` (``run[node].error.original.response``) and its body
is written to the node's logs.

Bodies: ``json`` sends any value as JSON; ``body`` sends text or bytes as they
are, and a mapping or list as JSON too (the common mistake of putting a dict
in ``body`` just works); ``form`` sends a mapping as an HTML form
(``application/x-www-form-urlencoded``). Give at most one of them.

A request that gets no response (connection refused, DNS, timeout) fails with
httpx's exception, its message extended with the method and URL. URLs in
error messages are masked: the password of ``user:password@`` and query values
whose names look secret (``token``, ``api_key``, ``signature``...) read ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from conductor_nb.model import templates
from conductor_nb.model.types import Port
from conductor_nb.nodes.builtin._define import define, is_given_empty, param

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
PREVIEW = 200  # characters of the body in the one-line error
LOGGED = 20_000  # characters of the body written to the node's logs
SECRET_QUERY = re.compile(r"token|secret|passw|pwd|key|sig|auth|credential|session", re.I)


class HTTPStatusFailure(RuntimeError):
    """A response outside 2xx when errors are not allowed; ``response`` is the whole response
    (``status``, ``headers``, ``body``, ``url``: what the node outputs with allowErrors)."""

    def __init__(self, message: str, response: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.response = response

    def __reduce__(self) -> tuple[Any, ...]:  # pickles whole (process pools, Dask workers)
        return (type(self), (str(self), self.response))


def preview(text: str, limit: int = PREVIEW) -> str:
    """``text`` on one line (whitespace collapsed), cut to ``limit`` characters."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def masked(url: str) -> str:
    """``url`` for an error message: no password, no secret-looking query values."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if has_password else netloc
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = parts.query
    if any(SECRET_QUERY.search(name) for name, _ in pairs):
        safe = [(n, "***" if SECRET_QUERY.search(n) else v) for n, v in pairs]
        query = urlencode(safe, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _no_response(exc: httpx.TransportError, method: str, url: str, timeout: float) -> Exception:
    """httpx's exception (same type) with the method and the masked URL it was about."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        said = f" ({exc})" if str(exc) else ""
        detail = f"no answer within timeout={timeout:g}s{said}"
    message = f"{detail} ({method} {masked(url)})"
    if isinstance(exc, httpx.TimeoutException):
        message += "; raise the node's timeout if the server is slow"
    try:
        return type(exc)(message, request=exc.request)
    except (TypeError, RuntimeError):  # an exception that takes other arguments, or no request
        return RuntimeError(f"{type(exc).__name__}: {message}")


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"url {url!r} is not an http(s) URL; only http:// and https:// are allowed"
        )


def _auth(auth: Mapping[str, Any] | None) -> tuple[httpx.Auth | None, dict[str, str]]:
    """``{type: basic, username, password}`` or ``{type: bearer, token}``."""
    if not auth:
        return None, {}
    kind = str(auth.get("type", "basic")).lower()
    if kind == "basic":
        return httpx.BasicAuth(str(auth.get("username", "")), str(auth.get("password", ""))), {}
    if kind == "bearer":
        return None, {"Authorization": f"Bearer {auth.get('token', '')}"}
    raise ValueError(f"auth type {kind!r} is not supported; use 'basic' or 'bearer'")


def _body(response: httpx.Response, mode: str) -> Any:
    if mode == "bytes":
        return response.content
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    is_json = kind == "application/json" or kind.endswith("+json")
    if mode == "json" or (mode == "auto" and is_json):
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            if mode == "json":
                raise ValueError(f"the response body is not valid JSON: {exc}") from None
    return response.text


BODY_PARAMS = ("json", "body", "form")


def _payload(json: Any, body: Any, form: Any) -> dict[str, Any]:
    """httpx's keyword for the request body: ``json=``, ``content=`` or ``data=``."""
    given = [name for name, v in zip(BODY_PARAMS, (json, body, form), strict=True) if v is not None]
    if len(given) > 1:
        raise ValueError(f"give one of json, body and form, not {' and '.join(given)}")
    if json is not None or isinstance(body, Mapping | list | tuple):
        return {"json": json if json is not None else body}
    if form is not None:
        if not isinstance(form, Mapping):
            raise TypeError(f"form must be a mapping of field names to values, got {form!r}")
        return {"data": {str(k): v if isinstance(v, list) else str(v) for k, v in form.items()}}
    if body is None:
        return {}
    if isinstance(body, bytes | bytearray | memoryview):
        return {"content": bytes(body)}
    return {"content": body.encode() if isinstance(body, str) else str(body).encode()}


async def http_request(
    input: Any = None,
    *,
    ctx: Any = None,
    url: str = "",
    method: str = "GET",
    headers: dict[str, str] | None = None,
    query: dict[str, Any] | None = None,
    json: Any = None,
    body: Any = None,
    form: dict[str, Any] | None = None,
    auth: dict[str, Any] | None = None,
    timeout: float = 30.0,  # noqa: ASYNC109 (a node param, given to httpx)
    followRedirects: bool = True,
    allowErrors: bool = False,
    response: str = "auto",
) -> dict[str, Any]:
    """Send one request; return status, headers and the (parsed) body."""
    _check_url(url)
    auth_obj, auth_headers = _auth(auth)
    send_headers = {**auth_headers, **{str(k): str(v) for k, v in (headers or {}).items()}}
    payload = _payload(json, body, form)
    async with httpx.AsyncClient(follow_redirects=followRedirects, timeout=timeout) as client:
        request = client.build_request(
            method.upper(),
            # httpx replaces a URL's own query with params=: merge them, the node's last
            httpx.URL(url).copy_merge_params(query) if query else url,
            headers=send_headers,
            **payload,
        )
        try:
            reply = await client.send(request, auth=auth_obj)
        except httpx.TransportError as exc:
            raise _no_response(exc, request.method, str(request.url), timeout) from exc
    result = {
        "status": reply.status_code,
        "headers": dict(reply.headers),
        "body": _body(reply, response),
        "url": str(reply.url),
    }
    if not allowErrors and not reply.is_success:
        text = reply.text if response != "bytes" else ""
        if text and ctx is not None:
            more = f" ({len(text) - LOGGED} more characters cut)" if len(text) > LOGGED else ""
            ctx.log(f"response body{more}:\n{text[:LOGGED]}", "WARNING")
        snippet = preview(text)
        raise HTTPStatusFailure(
            f"{method.upper()} {masked(str(reply.url))} answered {reply.status_code} "
            f"{reply.reason_phrase}"
            + (f": {snippet}" if snippet else "")
            + "; set allowErrors: true to pass non-2xx responses on",
            result,
        )
    return result


def _check(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems = []
    url = values.get("url")
    if is_given_empty(values, "url"):
        problems.append(("url", "url is empty: http-request needs an http:// or https:// URL"))
    elif isinstance(url, str) and "{{" not in url:
        try:
            _check_url(url)
        except ValueError as exc:
            problems.append(("url", str(exc)))
    given = [name for name in BODY_PARAMS if values.get(name) is not None]
    if len(given) > 1:
        problems.append(
            (
                given[-1],
                f"give one of json, body and form, not {' and '.join(given)}: json sends a "
                "value as JSON, body text or bytes (a mapping or list as JSON), form an "
                "HTML form",
            )
        )
    form = values.get("form")
    if form is not None and not isinstance(form, Mapping) and not templates.has_template(form):
        problems.append(("form", f"form must be a mapping of field names to values, got {form!r}"))
    return problems


HTTP_REQUEST = define(
    "http-request",
    http_request,
    category="network",
    description="Send an HTTP(S) request with httpx; output status, headers and the body "
    "(parsed when JSON). Non-2xx fails the node unless allowErrors.",
    outputs=[
        Port("status", type="int"),
        Port("headers", type="dict"),
        Port("body", description="parsed JSON, text, or bytes"),
    ],
    params=[
        param("url", "str", "", "http:// or https:// URL", required=True),
        param("method", "str", "GET", "HTTP method", choices=METHODS),
        param("headers", "dict", {}, "request headers"),
        param("query", "dict", {}, "query string parameters"),
        param("json", "any", None, "a JSON body"),
        param("body", "any", None, "a text or bytes body; a mapping or list is sent as JSON"),
        param("form", "dict", None, "an HTML form body (application/x-www-form-urlencoded)"),
        param("auth", "dict", None, "{type: basic, username, password} or {type: bearer, token}"),
        param("timeout", "float", 30.0, "seconds", minimum=0),
        param("followRedirects", "bool", True, "follow 3xx redirects"),
        param("allowErrors", "bool", False, "pass non-2xx responses on instead of failing"),
        param(
            "response",
            "str",
            "auto",
            "how to read the body",
            choices=("auto", "json", "text", "bytes"),
        ),
    ],
    example={
        "type": "http-request",
        "params": {"url": "https://httpbin.org/get", "query": {"q": 1}},
    },
    validate=_check,
    takes_context=True,
    side_effects=True,
)

NODE_TYPES = [HTTP_REQUEST]
