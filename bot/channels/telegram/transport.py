"""python-telegram-bot's transport to the Bot API, on aiohttp instead of httpx.

PTB accepts any `telegram.request.BaseRequest`; this one sends each call through one
`aiohttp.ClientSession` whose keep-alive pool holds at most `connection_pool_size` connections.
Parameters go as JSON, uploads as multipart/form-data.
Measured with bench.telegram, it costs the web process less CPU per Bot API call than
`HTTPXRequest`, whose connection-pool bookkeeping grows with the number of calls in flight.

PTB's `BaseRequest` turns the status and body into results and errors (429 -> RetryAfter,
400 -> BadRequest, 5xx -> NetworkError, ...); this module maps what aiohttp raises the way
`HTTPXRequest` maps httpx: a timeout is `TimedOut`, any other transport failure is
`NetworkError`. The token is part of every request url (`.../bot<token>/method`), so error
messages have it masked and do not chain aiohttp's exception, whose text can hold the url.
python-telegram-bot itself logs the url at DEBUG (`ladder -v`): `mask_token_in_logs` masks it.
Proxies from the environment (HTTPS_PROXY) are not used.
"""

from __future__ import annotations

import logging
import re

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_TOKEN_IN_URL = re.compile(r"/bot[^/\s'\"]+")
_DEFAULT = BaseRequest.DEFAULT_NONE
_JSON = {"Content-Type": "application/json"}


def masked(text: str) -> str:
    """`text` with the token of any Bot API url in it replaced by `<token>`."""
    return _TOKEN_IN_URL.sub("/bot<token>", text)


class _MaskToken(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/bot" in message:
            record.msg, record.args = masked(message), None
        return True


def mask_token_in_logs() -> None:
    """Mask the token in the lines python-telegram-bot's Bot logs (idempotent)."""
    logger = logging.getLogger("telegram.Bot")
    if not any(isinstance(f, _MaskToken) for f in logger.filters):
        logger.addFilter(_MaskToken())


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` over an aiohttp session, made on first use in the running event loop.

    The timeouts mean what they mean for `HTTPXRequest`, in seconds, None for none: `pool` to
    wait for a free connection plus `connect` to open one, `read` for the answer once the
    request is written. aiohttp has no write timeout of its own: `write` (`media_write` for
    uploads) bounds the whole call together with the other three."""

    def __init__(
        self,
        *,
        connection_pool_size: int = 16,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read = read_timeout
        self._write = write_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._media_write = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        self._open()

    async def shutdown(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),  # the Bot API sets none
            )
        return self._session

    async def do_request(  # noqa: PLR0917 (BaseRequest's signature)
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = _DEFAULT,
        write_timeout: object = _DEFAULT,
        connect_timeout: object = _DEFAULT,
        pool_timeout: object = _DEFAULT,
    ) -> tuple[int, bytes]:
        upload = request_data is not None and request_data.contains_files
        timeout = _timeout(
            read=_given(read_timeout, self._read),
            write=_given(write_timeout, self._media_write if upload else self._write),
            connect=_given(connect_timeout, self._connect),
            pool=_given(pool_timeout, self._pool),
        )
        body, headers = _body(request_data)
        try:
            async with self._open().request(
                method, url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # aiohttp's timeouts subclass it
            message = f"Timed out: aiohttp.{type(exc).__name__}: {exc}"
            raise TimedOut(masked(message)) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise NetworkError(masked(f"aiohttp.{type(exc).__name__}: {exc}")) from None


def _body(data: RequestData | None) -> tuple[aiohttp.FormData | bytes | None, dict[str, str]]:
    """The parameters as JSON (less work than form encoding; the Bot API takes either), or as
    multipart/form-data with the files of an upload (like HTTPXRequest)."""
    if data is None:
        return None, {}
    if not data.contains_files:
        return data.json_payload, _JSON
    form = aiohttp.FormData(data.json_parameters)
    for name, (filename, content, mimetype) in data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form, {}


def _given(value: object, default: float | None) -> float | None:
    """A timeout PTB passed (None: no limit), or ours when it passed DEFAULT_NONE."""
    if value is _DEFAULT:
        return default
    if value is None or isinstance(value, int | float):
        return value
    raise TypeError(f"a timeout is a number of seconds or None, not {value!r}")


def _timeout(
    *, read: float | None, write: float | None, connect: float | None, pool: float | None
) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for PTB's four: `connect` covers waiting for a pooled connection and
    opening one, `sock_read` the answer; with no write timeout in aiohttp, `total` (all four
    together) bounds a stalled write."""
    phases = (read, write, connect, pool)
    total = None if None in phases else sum(p for p in phases if p is not None)
    acquire = None if connect is None or pool is None else connect + pool
    return aiohttp.ClientTimeout(total=total, connect=acquire, sock_connect=connect, sock_read=read)
