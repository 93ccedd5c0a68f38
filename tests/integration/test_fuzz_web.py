"""Fuzzing Twilio's webhooks through the real app: random form fields, signed with the real
twilio RequestValidator (or not). Signed and well formed: 200/204 and one stored row (once per
MessageSid); signed without a MessageSid: 400 and nothing stored; unsigned: 403 and nothing
stored. Never a 500, never a partial write."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from crm.extensions import db
from crm.models import InboundMessage, Message

PUBLIC = "https://crm.example.gouv.fr"
TOKEN = "jeton-de-fuzz-twilio"
INBOUND = "/webhooks/twilio/sms"
STATUS = "/webhooks/twilio/status"
WEB = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_sids = itertools.count(1)

# Form values as a browser or Twilio can send them: no NUL (a form field cannot carry it
# through Werkzeug's parser unchanged on every database) but any other character.
VALUE = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=80
)
TWILIO_FIELDS = st.sampled_from(
    [
        "From",
        "To",
        "Body",
        "NumMedia",
        "AccountSid",
        "SmsSid",
        "MessageStatus",
        "SmsStatus",
        "ErrorCode",
        "ApiVersion",
        "FromCountry",
        "OptOutType",
        "ButtonText",
    ]
)
PHONE = st.one_of(
    VALUE,
    st.from_regex(r"\+336[0-9]{8}", fullmatch=True),
    st.sampled_from(["0612345678", "+33 6 12 34 56 78", "OpenLab", ""]),
)
BODY = st.one_of(VALUE, st.sampled_from(["OUI", "non merci", "STOP", "Arrêt", "👍", ""]))


@st.composite
def inbound_forms(draw: st.DrawFn) -> dict[str, str]:
    form = draw(st.dictionaries(st.one_of(TWILIO_FIELDS, VALUE.filter(bool)), VALUE, max_size=6))
    if draw(st.booleans()):
        form["From"] = draw(PHONE)
        form["Body"] = draw(BODY)
    sid = draw(st.sampled_from(["new", "blank", "absent", "random"]))
    if sid == "new":
        form["MessageSid"] = f"SM{next(_sids):032d}"
    elif sid == "blank":
        form["MessageSid"] = draw(st.sampled_from(["", "   "]))
    elif sid == "random":
        form["MessageSid"] = draw(VALUE)
    else:
        form.pop("MessageSid", None)
        form.pop("SmsSid", None)
    return form


@pytest.fixture
def signed(app, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", PUBLIC)
    monkeypatch.setitem(app.config, "TWILIO_AUTH_TOKEN", TOKEN)
    return app.test_client()


def _post(client, path: str, form: dict[str, str], sign: bool):  # type: ignore[no-untyped-def]
    headers = {}
    if sign:
        headers["X-Twilio-Signature"] = RequestValidator(TOKEN).compute_signature(
            PUBLIC + path, form
        )
    return client.post(path, data=form, headers=headers)


def _inbound_sids() -> list[str]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(InboundMessage.message_sid)))


@WEB
@given(form=inbound_forms(), sign=st.booleans())
def test_inbound_sms_with_any_fields(app_ctx, signed, form, sign):
    before = _inbound_sids()
    response = _post(signed, INBOUND, form, sign)
    after = _inbound_sids()
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    if not sign:
        assert response.status_code == 403 and after == before
    elif not sid:
        assert response.status_code == 400 and after == before
    else:
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "application/xml"
        new = sorted(set(after) - set(before))
        assert new == ([] if sid[:64] in before else [sid[:64]])
        assert len(after) == len(before) + len(new)


def test_the_same_message_twice_is_stored_once(app_ctx, signed):
    form = {"MessageSid": "SM" + "7" * 32, "From": "+33612345678", "Body": "OUI"}
    assert _post(signed, INBOUND, form, True).status_code == 200
    assert _post(signed, INBOUND, form, True).status_code == 200
    assert _inbound_sids() == ["SM" + "7" * 32]


STATUSES = st.sampled_from(
    ["queued", "sending", "sent", "delivered", "undelivered", "failed", "read", "", "SENT"]
)


@WEB
@given(
    extra=st.dictionaries(st.one_of(TWILIO_FIELDS, VALUE.filter(bool)), VALUE, max_size=5),
    status=st.one_of(STATUSES, VALUE),
    code=st.one_of(st.none(), VALUE, st.sampled_from(["30003", "30005", "21610", "-1", "1e9"])),
    known=st.booleans(),
    sign=st.booleans(),
)
def test_delivery_status_with_any_fields(app_ctx, signed, extra, status, code, known, sign):
    message = Message(
        channel="sms",
        backend="twilio",
        to_address="+33612345678",
        body="Bonjour",
        status="sent",
        provider_id=f"SM{next(_sids):032d}",
    )
    db.session.add(message)
    db.session.commit()
    form = {**extra, "MessageStatus": status}
    form["MessageSid"] = message.provider_id if known else f"SM{next(_sids):032d}"
    if code is not None:
        form["ErrorCode"] = code
    count = db.session.scalar(sa.select(sa.func.count()).select_from(Message))
    response = _post(signed, STATUS, form, sign)
    assert response.status_code == (204 if sign else 403), response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == count
    stored = db.session.get(Message, message.id)
    if not sign or not known:
        assert stored.status == "sent"
    else:
        assert stored.status in ("sent", "delivered", "failed", "undelivered", "read")


def test_a_nul_character_never_gives_a_500_nor_a_partial_row(app_ctx, signed):
    """PostgreSQL text cannot hold NUL: the message is kept without it, on every database."""
    form = {"MessageSid": "SM" + "5" * 32, "From": "+33612345678", "Body": "OUI\x00"}
    response = _post(signed, INBOUND, form, True)
    assert response.status_code == 200
    assert _inbound_sids() == ["SM" + "5" * 32]
    assert db.session.scalar(sa.select(InboundMessage.body)) == "OUI"
