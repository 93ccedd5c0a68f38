"""The Twilio SMS backend: the official `twilio` client, one request, no retry.

The client gets its own HTTP client: a finite timeout, no automatic retry (the follow-up engine
decides), and, when TWILIO_BASE_URL is set (tests), every request rewritten to that address
so that the real client talks to the fake Twilio server on 127.0.0.1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from crm.messaging.delivery import Accepted
from crm.messaging.errors import PermanentError, SendError, TransientError, error_for_code
from crm.messaging.senders import Sender

NAME = "twilio"
API_URL = "https://api.twilio.com"
LOOKUP_PAGE = 20  # a person gets a few SMS a month: the 20 latest cover any lost answer


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str
    auth_token: str
    base_url: str | None = None
    timeout: float = 10.0

    @classmethod
    def from_config(cls, config: Any) -> TwilioSettings:
        return cls(
            account_sid=config["TWILIO_ACCOUNT_SID"],
            auth_token=config["TWILIO_AUTH_TOKEN"],
            base_url=config.get("TWILIO_BASE_URL") or None,
            timeout=float(config.get("TWILIO_TIMEOUT_SECONDS") or 10.0),
        )


def rebase_url(url: str, base_url: str) -> str:
    """https://api.twilio.com/2010-04-01/... → {base_url}/2010-04-01/..."""
    target, base = urlsplit(url), urlsplit(base_url)
    path = base.path.rstrip("/") + target.path
    return urlunsplit((base.scheme, base.netloc, path, target.query, target.fragment))


class CrmHttpClient(TwilioHttpClient):
    """TwilioHttpClient with a finite timeout, no retries, and an optional base URL."""

    def __init__(self, *, timeout: float, base_url: str | None = None) -> None:
        super().__init__(pool_connections=True, timeout=timeout, max_retries=0)
        self.base_url = base_url
        if self.session is not None:
            read_environment_once(self.session, base_url or API_URL)

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if self.base_url:
            url = rebase_url(url, self.base_url)
        return super().request(method, url, params, data, headers, auth, timeout, allow_redirects)


def read_environment_once(session: requests.Session, url: str) -> None:
    """What requests reads from the environment at every request (proxies for `url`, the
    CA bundle), read once: scanning os.environ twice a request cost about 1 ms a send, and
    a worker's environment does not change. The client only talks to that one host."""
    session.proxies.update(requests.utils.get_environ_proxies(url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle and session.verify is True:
        session.verify = bundle
    session.trust_env = False


@lru_cache(maxsize=8)
def get_client(settings: TwilioSettings) -> Client:
    """One client (and its connection pool) per settings, reused across sends."""
    http_client = CrmHttpClient(timeout=settings.timeout, base_url=settings.base_url)
    return Client(settings.account_sid, settings.auth_token, http_client=http_client)


def send(
    settings: TwilioSettings,
    sender: Sender,
    to: str,
    body: str,
    *,
    status_callback: str | None = None,
    validity_seconds: int | None = None,
) -> Accepted:
    """Hand one SMS to Twilio; raise a classified SendError when it is not accepted."""
    params: dict[str, Any] = {"to": to, "body": body, **sender.twilio_params()}
    if status_callback:
        params["status_callback"] = status_callback
    if validity_seconds:
        params["validity_period"] = validity_seconds
    try:
        created = get_client(settings).messages.create(**params)
    except TwilioException as exc:
        raise _from_twilio(exc) from exc
    except requests.RequestException as exc:
        raise _from_network(exc) from exc
    segments = int(created.num_segments) if str(created.num_segments or "").isdigit() else None
    return Accepted(provider_id=created.sid, provider_status=created.status, segments=segments)


def find_sent(settings: TwilioSettings, to: str, body: str, since: datetime) -> Accepted | None:
    """The SMS to `to` with this body that Twilio created since `since`, if any: the answer to
    a send whose reply was lost (a read timeout). Raises a SendError when Twilio cannot be
    asked, so that nothing is sent blind."""
    try:
        recent = get_client(settings).messages.list(to=to, limit=LOOKUP_PAGE)
    except TwilioException as exc:
        raise _from_twilio(exc) from exc
    except requests.RequestException as exc:
        raise TransientError(
            "Impossible de vérifier auprès de Twilio si le SMS est parti : nouvel essai plus tard.",
            provider_message=str(exc),
        ) from exc
    for message in recent:
        created = message.date_created
        if message.body == body and (created is None or created >= since):
            return Accepted(provider_id=message.sid, provider_status=message.status)
    return None


def _from_twilio(exc: TwilioException) -> SendError:
    status: int | None = getattr(exc, "status", None)
    code: int | None = getattr(exc, "code", None)
    provider_message = str(getattr(exc, "msg", "") or getattr(exc, "detail", "") or "")
    if code == status:  # no Twilio code in the answer: the client repeats the HTTP status
        code = None
    if status == 429 or (status is not None and status >= 500):
        text = (
            "Twilio limite le débit d'envoi (HTTP 429) : nouvel essai plus tard."
            if status == 429
            else f"Twilio est indisponible (HTTP {status}) : nouvel essai plus tard."
        )
        return TransientError(
            text, code=code, http_status=status, provider_message=provider_message
        )
    if code is None:
        text = f"Twilio a refusé le SMS (HTTP {status})." if status else "Erreur du client Twilio."
        return PermanentError(
            text,
            http_status=status,
            provider_message=provider_message,
        )
    return error_for_code(code, http_status=status, provider_message=provider_message)


def _not_sent(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached Twilio (so no SMS can have gone out)."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError | ConnectTimeoutError)
    return False


def _from_network(exc: requests.RequestException) -> SendError:
    if _not_sent(exc):
        return TransientError(
            "Impossible de joindre Twilio : nouvel essai plus tard.",
            provider_message=str(exc),
        )
    if isinstance(exc, requests.Timeout):
        text = "Twilio n'a pas répondu à temps : le SMS a peut-être été envoyé."
    else:
        text = "La connexion à Twilio a été coupée : le SMS a peut-être été envoyé."
    return TransientError(text, maybe_sent=True, provider_message=str(exc))
