"""The load generator of bench/load.py: browsers with their own cookies, the callers' and the
managers' loops, and the open-loop inbound SMS generator (signed like Twilio's).

Everything runs on one asyncio loop (aiohttp) in the bench process and talks to 127.0.0.1
only. Each HTTP request is one `Sample` (redirects are not followed by aiohttp: the client
follows them itself, so that each request is timed and counted under its own route).
"""

from __future__ import annotations

import asyncio
import html
import random
import re
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bench.reply_mix import inbound_params
from crm.models.registration import REGISTRATION_STATUS_LABELS
from crm.services import calls as call_rules
from crm.services import registrations

# Route labels (one per route template) and the statuses each one answers when all is well.
LOGIN_PAGE = "GET /connexion"
LOGIN = "POST /connexion"
HOME = "GET /"
WORKSPACE = "GET /appels/"
NEXT_CALL = "POST /appels/labs/<id>/suivant"
CALL_PAGE = "GET /appels/inscriptions/<id>"
LOG_CALL = "POST /appels/inscriptions/<id>"
INBOUND = "POST /webhooks/twilio/sms"
FUNNEL = "GET /tableau-de-bord/?by=<vue> (entonnoir)"
FORECAST = "GET /tableau-de-bord/?lab=<id> (prévisions)"
EXPECTED = {
    LOGIN_PAGE: {200},
    LOGIN: {302},
    HOME: {200},
    WORKSPACE: {200},
    NEXT_CALL: {302},
    CALL_PAGE: {200},
    LOG_CALL: {302},
    INBOUND: {200},
    FUNNEL: {200},
    FORECAST: {200},
}
# The routes of the measured phase, in the report's order.
MEASURED = [WORKSPACE, NEXT_CALL, CALL_PAGE, LOG_CALL, INBOUND, FUNNEL, FORECAST]
INBOUND_PATH = "/webhooks/twilio/sms"
# What callers log, roughly: (outcome, weight). No callback: its time must fall in the calling
# hours, which depend on when the run happens.
OUTCOMES = [
    ("no_answer", 40),
    ("voicemail", 20),
    ("interested", 15),
    ("confirmed", 10),
    ("declined", 10),
    ("not_potential_user", 3),
    ("wrong_number", 2),
]
STATUS_BY_LABEL = {label: status for status, label in REGISTRATION_STATUS_LABELS.items()}
_INPUT = re.compile(r"<input\b[^>]*>", re.S)
_ATTR = re.compile(r'([\w-]+)="([^"]*)"')
_ALERT = re.compile(r"fr-alert--error[^>]*>\s*<p>([^<]+)</p>")
_STATUS_BADGE = re.compile(r'<span class="fr-badge fr-badge--no-icon">([^<]+)</span>')


# The two errors that say "too slow" rather than "wrong": no answer within --timeout, and an
# SMS the generator did not send because the server was 2 s behind.
TIMED_OUT = "pas de réponse dans le délai (TimeoutError)"
NOT_SENT = "non envoyé (plus de 2 s de retard côté serveur)"
TOO_SLOW = (TIMED_OUT, NOT_SENT)


@dataclass
class Sample:
    route: str
    status: int  # 0: no answer (timeout, refused, reset); -1: not sent (generator behind)
    ms: float
    error: str | None  # None: the expected answer; else what went wrong
    at: float  # seconds since the start of the phase
    key: str = ""  # the MessageSid of an inbound SMS


@dataclass
class Run:
    """What one phase recorded, and the bounds it runs under."""

    base: str
    timeout: float
    start: float = field(default_factory=time.perf_counter)
    deadline: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    conflicts: int = 0  # 409 "la fiche a été modifiée": the app's optimistic lock, reloaded
    calls_logged: int = 0  # outcome posts answered 302 (each must be one row in `calls`)
    calls_in_doubt: int = 0  # outcome posts without an answer (the row may exist)
    lag: float = 0.0  # the SMS scheduler's worst lateness, seconds

    def record(self, sample: Sample) -> None:
        self.samples.append(sample)

    def over(self) -> bool:
        return time.perf_counter() >= self.deadline


@dataclass
class Answer:
    status: int
    body: str
    location: str  # the path and query of a redirect, or ""


class Browser:
    """One person's browser: the session cookie kept by hand. In production the cookie is
    `Secure` and the layout is plain http on 127.0.0.1, so a standard jar would not send it
    back; a browser behind the real TLS proxy would."""

    def __init__(self, http: aiohttp.ClientSession, run: Run) -> None:
        self.http, self.run = http, run
        self.cookies: dict[str, str] = {}

    async def fetch(
        self, method: str, path: str, route: str, data: Mapping[str, str] | None = None
    ) -> Answer:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if not self.cookies:
            headers = {}
        t0 = time.perf_counter()
        status, body, location, error = 0, "", "", None
        try:
            async with self.http.request(
                method,
                self.run.base + path,
                data=data,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.run.timeout),
            ) as response:
                body = await response.text()
                status = response.status
                target = urlsplit(response.headers.get("Location", ""))
                location = target.path + (f"?{target.query}" if target.query else "")
                self._keep(response.headers.getall("Set-Cookie", []))
        except TimeoutError:  # aiohttp's own timeouts are TimeoutError too
            error = TIMED_OUT
        except aiohttp.ClientError as exc:
            error = f"pas de réponse ({type(exc).__name__})"
        ms = (time.perf_counter() - t0) * 1000
        if error is None and status not in EXPECTED[route]:
            error = f"HTTP {status}"
        if error is None and location.startswith("/connexion") and route != LOGIN_PAGE:
            error = "session perdue (renvoyé à la connexion)"
        answer = Answer(status, body, location)
        alert = _ALERT.search(body) if error and 400 <= status < 500 else None
        said = html.unescape(alert.group(1)).strip() if alert else ""
        if route == LOG_CALL and status == 409 and said.startswith(call_rules.STALE_MESSAGE[:40]):
            self.run.conflicts += 1  # the optimistic lock did its job: counted apart
            error = None
        elif said:
            error = f"{error} « {said[:90]} »"
        self.run.record(Sample(route, status, ms, error, t0 - self.run.start))
        return answer

    def _keep(self, headers: list[str]) -> None:
        for header in headers:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                gone = morsel.value == "" or morsel["max-age"] == "0"
                gone = gone or "1970" in morsel["expires"]
                if gone:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value


def inputs(html: str, form_id: str | None = None) -> dict[str, str]:
    """name → value of the <input> elements of the page (or of one form of it)."""
    if form_id:
        start = html.find(f'id="{form_id}"')
        html = html[start : html.find("</form>", start)] if start >= 0 else ""
    values: dict[str, str] = {}
    for tag in _INPUT.findall(html):
        attrs = dict(_ATTR.findall(tag))
        if "name" in attrs and attrs.get("type") != "checkbox":
            values.setdefault(attrs["name"], attrs.get("value", ""))
    return values


async def log_in(browser: Browser, email: str, password: str) -> bool:
    """The real login form: the page (CSRF token), the credentials, then the home page."""
    page = await browser.fetch("GET", "/connexion", LOGIN_PAGE)
    token = inputs(page.body).get("csrf_token", "")
    form = {"csrf_token": token, "email": email, "password": password}
    answer = await browser.fetch("POST", "/connexion", LOGIN, form)
    if answer.status != 302:
        return False
    await browser.fetch("GET", answer.location or "/", HOME)
    return True


# --- the callers ----------------------------------------------------------------------------


def choose_outcome(rng: random.Random, page: str) -> str:
    """An outcome a caller reading the page could log: the status shown decides what is
    possible (a confirmed or waitlisted person with a reply to read is only called back:
    not "interested" again, nor confirmed past a full lab)."""
    found = _STATUS_BADGE.search(page)
    label = html.unescape(found.group(1)).strip() if found else ""
    status = STATUS_BY_LABEL.get(label, "to_contact")
    names, weights = zip(*OUTCOMES, strict=True)
    outcome = rng.choices(names, weights)[0]
    if status not in registrations.WAITING:  # a reply to read from someone past that stage
        return outcome if outcome in ("no_answer", "voicemail") else "no_answer"
    target = call_rules.target_status(outcome, status)
    if target is not None:
        try:
            registrations.check_transition(status, target)
        except registrations.TransitionError:
            return "no_answer"  # an attempt never moves a registration
    return outcome


def outcome_form(rng: random.Random, page: str, outcome: str) -> dict[str, str]:
    fields = inputs(page, "form-appel")
    form = {
        "csrf_token": fields.get("csrf_token", ""),
        "prospect_version": fields.get("prospect_version", ""),
        "registration_version": fields.get("registration_version", ""),
        "task_id": fields.get("task_id", ""),
        "notes": rng.choice(["", "", "Rappeler en fin de journée", "Très intéressée"]),
        "outcome": outcome,
        "callback_date": "",
        "callback_time": "",
        "reason": "N'utilise pas le service" if outcome == "not_potential_user" else "",
    }
    if outcome in ("interested", "confirmed") and rng.random() < 0.5:
        form["consent_sms"] = "y"
    return form


async def open_next(browser: Browser, lab_id: int) -> tuple[str, Answer] | None:
    """The workspace, "Prochain appel", and the call page it leads to: (its path, the
    page); None when nobody is left to call or something failed."""
    workspace = await browser.fetch("GET", "/appels/", WORKSPACE)
    token = inputs(workspace.body).get("csrf_token", "")
    served = await browser.fetch(
        "POST", f"/appels/labs/{lab_id}/suivant", NEXT_CALL, {"csrf_token": token}
    )
    if not served.location.startswith("/appels/inscriptions/"):
        return None
    page = await browser.fetch("GET", served.location, CALL_PAGE)
    return (served.location, page) if page.status == 200 else None


async def pause(run: Run, rng: random.Random, low: float, high: float) -> bool:
    """Think for a while; False when the phase ends meanwhile."""
    wait = min(rng.uniform(low, high), max(0.0, run.deadline - time.perf_counter()))
    await asyncio.sleep(wait)
    return not run.over()


async def caller(
    browser: Browser, lab_id: int, rng: random.Random, think: tuple[float, float]
) -> None:
    """Next call, think (the call itself), log the outcome with the real form (which serves
    the next person), again and again until the end of the phase."""
    run = browser.run
    if not await pause(run, rng, 0, think[1]):  # callers do not all start at once
        return
    page: Answer | None = None
    path = ""
    while not run.over():
        if page is None or page.status != 200 or "form-appel" not in page.body:
            served = await open_next(browser, lab_id)
            if served is None:
                page = None
                if not await pause(run, rng, *think):
                    return
                continue
            path, page = served
        if not await pause(run, rng, *think):
            return
        outcome = choose_outcome(rng, page.body)
        form = outcome_form(rng, page.body, outcome)  # posted where the form says: no query
        answer = await browser.fetch("POST", path.split("?")[0], LOG_CALL, form)
        if answer.status == 302:
            run.calls_logged += 1
        elif answer.status == 0:
            run.calls_in_doubt += 1
        if answer.status == 409:  # stale or refused: read the page again, as asked
            page = await browser.fetch("GET", path, CALL_PAGE)
        elif answer.location.startswith("/appels/inscriptions/"):
            path = answer.location
            page = await browser.fetch("GET", path, CALL_PAGE)
        else:
            page = None  # nobody left for now, or an error: back to the workspace


# --- the managers ---------------------------------------------------------------------------


async def manager(
    browser: Browser, lab_ids: list[int], rng: random.Random, think: tuple[float, float]
) -> None:
    """A manager reading the dashboard: the funnel by source, by caller, by lab, and each
    lab's forecast, in turn, every few seconds."""
    pages = [(FUNNEL, f"/tableau-de-bord/?by={by}") for by in ("source", "caller", "lab")]
    pages += [(FORECAST, f"/tableau-de-bord/?lab={lab_id}") for lab_id in lab_ids]
    rng.shuffle(pages)
    turn = 0
    while await pause(browser.run, rng, *think):
        route, path = pages[turn % len(pages)]
        await browser.fetch("GET", path, route)
        turn += 1


# --- the inbound SMS ------------------------------------------------------------------------


def signed_messages(
    count: int, phones: list[str], to: str, url: str, token: str, seed: int
) -> list[tuple[dict[str, str], dict[str, str]]]:
    """`count` inbound SMS as Twilio posts them (form and X-Twilio-Signature), unique
    MessageSid, From spread over `phones`; signed before the clock starts."""
    from twilio.request_validator import RequestValidator

    rng, validator = random.Random(seed), RequestValidator(token)
    prepared = []
    for _ in range(count):
        params = inbound_params(rng, phones, to, "AC" + "0" * 31 + "1")
        prepared.append((params, {"X-Twilio-Signature": validator.compute_signature(url, params)}))
    return prepared


async def inbound_sms(
    http: aiohttp.ClientSession,
    run: Run,
    prepared: list[tuple[dict[str, str], dict[str, str]]],
    rate: float,
) -> None:
    """Open loop: message i is due at start + i / rate, whatever the server does; latency
    counts from that instant. Past 2 s of backlog (2 x rate outstanding) a message is not
    sent and counts as an error, so that an overloaded server cannot stretch the run."""
    max_inflight = max(50, int(2 * rate))
    inflight = 0
    tasks: list[asyncio.Task[None]] = []

    async def send(params: dict[str, str], headers: dict[str, str], due: float) -> None:
        nonlocal inflight
        inflight += 1
        status, error = 0, None
        try:
            async with http.post(
                run.base + INBOUND_PATH,
                data=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=run.timeout),
            ) as response:
                await response.read()
                status = response.status
        except TimeoutError:
            error = TIMED_OUT
        except aiohttp.ClientError as exc:
            error = f"pas de réponse ({type(exc).__name__})"
        finally:
            inflight -= 1
        if error is None and status != 200:
            error = f"HTTP {status}"
        ms = (time.perf_counter() - due) * 1000
        run.record(Sample(INBOUND, status, ms, error, due - run.start, params["MessageSid"]))

    start = run.start
    for i, (params, headers) in enumerate(prepared):
        due = start + i / rate
        if due >= run.deadline:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        run.lag = max(run.lag, time.perf_counter() - due)
        if inflight >= max_inflight:
            run.record(Sample(INBOUND, -1, 0.0, NOT_SENT, due - start, params["MessageSid"]))
            continue
        tasks.append(asyncio.create_task(send(params, headers, due)))
    await asyncio.gather(*tasks)


async def bounded(jobs: list[Awaitable[Any]], limit: float) -> int:
    """Run the jobs together; whatever is still running after `limit` seconds is cancelled
    (every request has its own timeout too: this is the last resort). Returns how many
    were cancelled: their last request is not counted anywhere."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    done, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in done:
        task.result()  # a bug in the generator must not pass silently
    return len(pending)
