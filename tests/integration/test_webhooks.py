"""Twilio webhooks through the real app: signatures (the real twilio RequestValidator),
inbound replies and their effects, idempotency on MessageSid, delivery receipts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from crm.extensions import db
from crm.messaging import webhooks
from crm.models import (
    CallTask,
    Consent,
    EarlyReceipt,
    Event,
    FollowUp,
    InboundMessage,
    Lab,
    Message,
    Sequence,
    SequenceStep,
)
from crm.services import answers, followups, replies, sending
from crm.timeutil import utcnow
from tests.factories import person

pytest_plugins = ["tests.fakes"]

PUBLIC = "https://crm.example.gouv.fr"
TOKEN = "jeton-de-test-twilio"
INBOUND = "/webhooks/twilio/sms"
STATUS = "/webhooks/twilio/status"
_sids = iter(range(1, 1_000_000))


@pytest.fixture
def signed(app, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", PUBLIC)
    monkeypatch.setitem(app.config, "TWILIO_AUTH_TOKEN", TOKEN)
    return app.test_client()


def signature(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def sms(client, sender: str, body: str, sid: str | None = None, **headers):
    params = {
        "MessageSid": sid or f"SM{next(_sids):032d}",
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+33757000000",
        "Body": body,
        "NumMedia": "0",
    }
    headers.setdefault("X-Twilio-Signature", signature(PUBLIC + INBOUND, params))
    return client.post(INBOUND, data=params, headers=headers)


def receipt(client, sid: str, status: str, error_code: str | None = None):
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "0" * 32}
    if error_code:
        params["ErrorCode"] = error_code
    # Signed with the configured token (the fake Twilio account's in these tests).
    headers = {"X-Twilio-Signature": webhooks.sign(PUBLIC + STATUS, params)}
    return client.post(STATUS, data=params, headers=headers)


def rows(registration, kind: str) -> list[FollowUp]:
    return list(
        db.session.scalars(
            sa.select(FollowUp)
            .join(SequenceStep, SequenceStep.id == FollowUp.step_id)
            .join(Sequence, Sequence.id == SequenceStep.sequence_id)
            .where(FollowUp.registration_id == registration.id, Sequence.kind == kind)
        )
    )


def count(model) -> int:
    return int(db.session.scalar(sa.select(sa.func.count()).select_from(model)))


# --- signatures ------------------------------------------------------------------------------


def test_a_signed_message_is_stored_and_answered_with_twiml(world, signed):
    reg = person(world, allow_sms=True, first_name="Inès")
    response = sms(signed, reg.prospect.phone, "Oui je serai là !")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert "<Response><Message>Merci Inès" in response.get_data(as_text=True)
    assert count(InboundMessage) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Twilio-Signature": ""},
        {"X-Twilio-Signature": "bm90LWEtc2lnbmF0dXJl"},
        # Signed for the address the app sees behind the proxy, not the public one.
        {"X-Twilio-Signature": "internal"},
        # Signed with another account's token.
        {"X-Twilio-Signature": "other-token"},
    ],
)
def test_a_missing_or_wrong_signature_is_403_and_stores_nothing(world, signed, headers):
    reg = person(world, allow_sms=True)
    params = {"MessageSid": "SM" + "1" * 32, "From": reg.prospect.phone, "Body": "oui"}
    if headers["X-Twilio-Signature"] == "internal":
        headers = {"X-Twilio-Signature": signature("http://localhost" + INBOUND, params)}
    elif headers["X-Twilio-Signature"] == "other-token":
        headers = {"X-Twilio-Signature": signature(PUBLIC + INBOUND, params, "autre")}
    response = signed.post(INBOUND, data=params, headers=headers)
    assert response.status_code == 403
    assert count(InboundMessage) == 0
    db.session.refresh(reg)
    assert reg.status == "to_contact"


def test_a_tampered_parameter_breaks_the_signature(world, signed):
    reg = person(world, allow_sms=True)
    params = {"MessageSid": "SM" + "2" * 32, "From": reg.prospect.phone, "Body": "non"}
    good = signature(PUBLIC + INBOUND, params)
    params["Body"] = "oui"
    assert (
        signed.post(INBOUND, data=params, headers={"X-Twilio-Signature": good}).status_code == 403
    )
    assert count(InboundMessage) == 0


def test_the_public_url_with_its_query_string_is_what_is_signed(world, signed, app, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", PUBLIC + "/crm/")
    reg = person(world, allow_sms=True)
    params = {"MessageSid": "SM" + "3" * 32, "From": reg.prospect.phone, "Body": "aide"}
    url = PUBLIC + "/crm" + INBOUND + "?source=twilio"
    response = signed.post(
        INBOUND + "?source=twilio",
        data=params,
        headers={"X-Twilio-Signature": signature(url, params)},
        base_url="http://10.0.0.5:8000",  # what gunicorn sees behind the TLS proxy
    )
    assert response.status_code == 200
    assert "STOP" in response.get_data(as_text=True)


def test_webhooks_need_no_session_nor_csrf_but_other_posts_still_do(world, signed):
    reg = person(world, allow_sms=True)
    assert sms(signed, reg.prospect.phone, "aide").status_code == 200
    response = signed.post("/connexion", data={"email": "a@b.fr", "password": "x"})
    assert response.status_code == 400


# --- inbound replies -------------------------------------------------------------------------


def test_the_same_message_sid_posted_five_times_is_processed_once(world, signed):
    reg = person(world, allow_sms=True)
    answers_ = [sms(signed, reg.prospect.phone, "OUI", sid="SM" + "5" * 32) for _ in range(5)]
    assert all(r.status_code == 200 for r in answers_)
    bodies = [r.get_data(as_text=True) for r in answers_]
    assert "confirmée" in bodies[0]
    assert all("<Message>" not in body for body in bodies[1:])
    assert count(InboundMessage) == 1
    changes = db.session.scalar(
        sa.select(sa.func.count(Event.id)).where(
            Event.kind == "registration.status", Event.to_status == "confirmed"
        )
    )
    assert changes == 1


def test_yes_confirms_stops_the_invitation_and_schedules_reminders(world, signed):
    lab = world["lab"]
    lab.venue = "20 avenue de Ségur, Paris"
    reg = person(world, allow_sms=True, first_name="Jeanne")
    body = sms(signed, reg.prospect.phone, "Ok je serai là 👍").get_data(as_text=True)
    db.session.refresh(reg)
    assert reg.status == "confirmed"
    assert "20 avenue de Ségur, Paris" in body
    assert {r.status for r in rows(reg, "invitation")} == {"cancelled"}
    assert rows(reg, "reminders")
    inbound = db.session.scalar(sa.select(InboundMessage))
    assert (inbound.outcome, inbound.understood, inbound.registration_id) == (
        "applied",
        "confirm",
        reg.id,
    )
    event = db.session.scalar(sa.select(Event).where(Event.kind == "reply.received"))
    assert event.data["body"] == "Ok je serai là 👍" and event.registration_id == reg.id


def test_no_declines_cancels_everything_and_answers_politely(world, signed):
    reg = person(world, "confirmed", allow_sms=True)
    followups.start_reminders(reg, utcnow())
    db.session.commit()
    assert any(r.status == "scheduled" for r in rows(reg, "reminders"))
    body = sms(signed, reg.prospect.phone, "Non désolé je ne pourrai pas").get_data(as_text=True)
    db.session.refresh(reg)
    assert reg.status == "declined"
    assert "merci de nous avoir prévenus" in body
    open_rows = [
        r
        for r in rows(reg, "invitation") + rows(reg, "reminders")
        if r.status
        in (
            "scheduled",
            "queued",
        )
    ]
    assert open_rows == []


def test_stop_withdraws_sms_everywhere_and_is_acknowledged_once(world, signed):
    reg = person(world, allow_sms=True)
    first = sms(signed, reg.prospect.phone, "STOP").get_data(as_text=True)
    second = sms(signed, reg.prospect.phone, "stop svp").get_data(as_text=True)
    db.session.refresh(reg.prospect)
    assert reg.prospect.allow_sms is False
    assert "Vous ne recevrez plus de SMS" in first
    assert "<Message>" not in second
    consent = db.session.scalar(sa.select(Consent))
    assert (consent.channel, consent.granted, consent.method, consent.from_person) == (
        "sms",
        False,
        "sms_keyword",
        True,
    )
    # The invitation SMS due later is skipped at send time: no permission.
    row = next(r for r in rows(reg, "invitation") if r.step.channel == "sms")
    row.status, row.due_at = "queued", utcnow()
    db.session.commit()
    assert sending.send(row.id) == "skipped"

    back = sms(signed, reg.prospect.phone, "START").get_data(as_text=True)
    db.session.refresh(reg.prospect)
    assert reg.prospect.allow_sms is True and "de nouveau" in back


def test_help_says_who_writes_and_how_to_stop(world, signed):
    reg = person(world, allow_sms=True)
    body = sms(signed, reg.prospect.phone, "info ?").get_data(as_text=True)
    assert "Open Lab" in body and "STOP" in body
    db.session.refresh(reg)
    assert reg.status == "to_contact"


def test_the_configured_sender_signs_replies_and_default_messages(world, signed, app, monkeypatch):
    """CRM_SENDER_NAME names the team in the shipped texts, not "Open Lab" (the editor
    requires that name in every template, so the defaults must carry it too)."""
    monkeypatch.setitem(app.config, "CRM_SENDER_NAME", "Mairie de Lyon")
    db.session.execute(sa.delete(SequenceStep))
    db.session.execute(sa.delete(Sequence))
    db.session.commit()
    reg = person(world, allow_sms=True)
    body = sms(signed, reg.prospect.phone, "aide").get_data(as_text=True)
    assert "Mairie de Lyon" in body and "Open Lab" not in body
    body = sms(signed, reg.prospect.phone, "oui").get_data(as_text=True)
    assert "L'équipe Mairie de Lyon" in body.replace("&#39;", "'")
    messages = db.session.scalars(
        sa.select(SequenceStep.body).where(SequenceStep.channel.in_(("sms", "email")))
    ).all()
    assert messages and all("Mairie de Lyon" in t and "Open Lab" not in t for t in messages)


def test_a_message_not_understood_becomes_a_task_to_read_and_changes_nothing(world, signed):
    reg = person(world, allow_sms=True)
    body = sms(signed, reg.prospect.phone, "C'est où exactement ? Il y a un parking ?")
    assert "<Message>" not in body.get_data(as_text=True)
    db.session.refresh(reg)
    assert reg.status == "to_contact"
    task = db.session.scalar(sa.select(CallTask))
    assert task.kind == "to_read" and "parking" in task.note
    assert db.session.scalar(sa.select(InboundMessage.outcome)) == "to_read"


def test_an_unknown_number_is_kept_for_a_manager(world, signed):
    response = sms(signed, "+33 6 99 99 99 99", "oui")
    assert response.status_code == 200
    inbound = db.session.scalar(sa.select(InboundMessage))
    assert (inbound.outcome, inbound.from_e164, inbound.prospect_id) == (
        "unknown_sender",
        "+33699999999",
        None,
    )


def test_a_processing_failure_keeps_the_raw_message(world, signed, monkeypatch):
    reg = person(world, allow_sms=True)

    def broken(*args, **kwargs):
        raise RuntimeError("panne")

    monkeypatch.setattr(answers, "confirm", broken)
    response = sms(signed, reg.prospect.phone, "oui")
    assert response.status_code == 200 and "<Message>" not in response.get_data(as_text=True)
    inbound = db.session.scalar(sa.select(InboundMessage))
    assert inbound.outcome == "received" and inbound.body == "oui"


def test_a_failure_at_the_commit_keeps_the_raw_message_alone(world, signed, monkeypatch):
    """The effects fail only when written (a constraint at the commit): everything is rolled
    back, then the raw message is committed alone, for a manager to read."""
    reg = person(world, allow_sms=True)
    monkeypatch.setattr(replies, "_event", lambda *a: db.session.add(Event(kind=None)))
    response = sms(signed, reg.prospect.phone, "oui")
    assert response.status_code == 200 and "<Message>" not in response.get_data(as_text=True)
    db.session.expire_all()
    inbound = db.session.scalar(sa.select(InboundMessage))
    assert inbound.outcome == "received" and inbound.body == "oui"
    assert reg.status != "confirmed"


def _second_lab(world) -> Lab:
    now = utcnow()
    lab = Lab(
        title="Second lab",
        starts_at=now + timedelta(days=40),
        ends_at=now + timedelta(days=40, hours=4),
        status="recruiting",
    )
    db.session.add(lab)
    db.session.commit()
    return lab


def _sent_sms(registration, minutes_ago: int) -> None:
    row = next(r for r in rows(registration, "invitation") if r.step.channel == "sms")
    message = Message(
        channel="sms", backend="outbox", to_address="+33600000000", body="x", status="sent"
    )
    db.session.add(message)
    db.session.flush()
    row.status, row.message_id = "sent", message.id
    row.sent_at = utcnow() - timedelta(minutes=minutes_ago)
    db.session.commit()


def test_with_several_labs_the_most_recently_messaged_is_answered(world, signed):
    first = person(world, allow_sms=True)
    second = person({**world, "lab": _second_lab(world)}, allow_sms=True)
    second.prospect_id = first.prospect_id  # the same person in two labs
    db.session.commit()
    _sent_sms(first, minutes_ago=600)
    _sent_sms(second, minutes_ago=5)
    sms(signed, first.prospect.phone, "oui")
    db.session.refresh(first)
    db.session.refresh(second)
    assert (first.status, second.status) == ("to_contact", "confirmed")


def test_with_several_labs_and_no_message_the_answer_is_read_by_a_person(world, signed):
    first = person(world, allow_sms=True)
    second = person({**world, "lab": _second_lab(world)}, allow_sms=True)
    second.prospect_id = first.prospect_id
    db.session.commit()
    sms(signed, first.prospect.phone, "oui")
    db.session.refresh(first)
    db.session.refresh(second)
    assert (first.status, second.status) == ("to_contact", "to_contact")
    task = db.session.scalar(sa.select(CallTask))
    assert task.kind == "to_read" and "Plusieurs open labs" in task.note


# --- delivery receipts -----------------------------------------------------------------------


@pytest.fixture
def sent_sms(world, sms_via_twilio, monkeypatch, app):
    """An invitation SMS really sent through the fake Twilio server."""
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", PUBLIC)
    monkeypatch.setitem(app.config, "SEND_DAYS", "1-7")
    monkeypatch.setitem(app.config, "SEND_HOURS", "00:00-23:59:59")
    monkeypatch.setattr("crm.services.window.is_holiday", lambda day: False)
    reg = person(world, allow_sms=True)
    row = next(r for r in rows(reg, "invitation") if r.step.channel == "sms")
    row.status, row.due_at = "queued", utcnow()
    db.session.commit()
    assert sending.send(row.id) == "sent"
    return reg, row, db.session.get(Message, row.message_id)


def test_the_send_job_gives_twilio_the_status_webhook(sent_sms, sms_via_twilio):
    form = sms_via_twilio.requests[-1].form
    assert form["StatusCallback"] == PUBLIC + STATUS
    assert int(form["ValidityPeriod"]) > 0


def test_receipts_only_move_forward(sent_sms, app):
    _reg, row, message = sent_sms
    client = app.test_client()
    assert receipt(client, message.provider_id, "delivered").status_code == 204
    for late in ("sent", "queued", "failed", "delivered"):
        assert receipt(client, message.provider_id, late, "30003").status_code == 204
    db.session.refresh(message)
    db.session.refresh(row)
    assert (message.status, message.provider_status) == ("delivered", "delivered")
    assert row.status == "delivered"


def test_a_failed_receipt_has_the_send_time_effects(sent_sms, app):
    reg, row, message = sent_sms
    client = app.test_client()
    receipt(client, message.provider_id, "sent")
    receipt(client, message.provider_id, "undelivered", "21211")
    db.session.refresh(message)
    db.session.refresh(row)
    db.session.refresh(reg.prospect)
    assert (message.status, message.error_code) == ("failed", 21211)
    assert row.status == "failed"
    assert reg.prospect.phone is None and reg.prospect.phone_invalid
    assert db.session.scalar(sa.select(CallTask.kind)) == "failed_sms"
    assert db.session.scalar(sa.select(Event).where(Event.kind == "message.failed"))


def test_a_receipt_without_signature_or_for_an_unknown_message_changes_nothing(sent_sms, app):
    _reg, _row, message = sent_sms
    client = app.test_client()
    params = {"MessageSid": message.provider_id, "MessageStatus": "delivered"}
    assert client.post(STATUS, data=params).status_code == 403
    assert receipt(client, "SM" + "9" * 32, "delivered").status_code == 204
    db.session.refresh(message)
    assert message.status == "sent"


def test_a_malformed_receipt_field_never_loses_the_receipt(sent_sms, app):
    """Signed, yet odd: an error code no column holds, NUL characters, an id longer than any
    of ours. The status still moves; what cannot be read is left out."""
    _reg, _row, message = sent_sms
    client = app.test_client()
    assert receipt(client, message.provider_id + "\x00", "failed", "9" * 30).status_code == 204
    db.session.refresh(message)
    assert (message.status, message.error_code) == ("failed", None)
    assert receipt(client, "SM" + "7" * 100, "delivered").status_code == 204
    assert db.session.scalar(sa.select(sa.func.count()).select_from(EarlyReceipt)) == 0


# --- managers' list and the development phone ------------------------------------------------


def test_managers_see_what_needs_a_person_and_mark_it_handled(world, app, signed):
    from crm.services.accounts import create_user
    from tests.conftest import login

    create_user("cheffe@test.fr", "x" * 12, "manager", "Camille")
    client = app.test_client()
    assert login(client, "cheffe@test.fr", "x" * 12).status_code == 302
    signed_client = signed
    reg = person(world, allow_sms=True, first_name="Lina")
    sms(signed_client, "+33 6 11 22 33 44", "Qui êtes-vous ?")
    sms(signed_client, reg.prospect.phone, "oui")
    html = client.get("/reponses/").get_data(as_text=True)
    assert "Qui êtes-vous ?" in html and "Numéro inconnu" in html
    assert "Lina" not in html  # understood and applied: nothing left to do
    assert "Lina" in client.get("/reponses/?tout=1").get_data(as_text=True)
    for page in ("0", "-1", "99"):  # out of range: the first page, or an empty one, never a 404
        response = client.get(f"/reponses/?page={page}")
        assert response.status_code == 200, page
    assert "Qui êtes-vous ?" in client.get("/reponses/?page=0").get_data(as_text=True)
    unknown = db.session.scalar(
        sa.select(InboundMessage).where(InboundMessage.outcome == "unknown_sender")
    )
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = client.post(f"/reponses/{unknown.id}/traite", data={"csrf_token": token})
    assert response.status_code == 302
    db.session.refresh(unknown)
    assert unknown.outcome == "read" and unknown.handled_by_id is not None
    handled = db.session.scalar(sa.select(Event).where(Event.kind == "reply.handled"))
    assert handled.actor_id == unknown.handled_by_id and handled.data == {"inbound_id": unknown.id}
    # Marked twice (two managers at once, a page left open): once.
    client.post(f"/reponses/{unknown.id}/traite", data={"csrf_token": token})
    kinds = db.session.scalars(sa.select(Event.kind).where(Event.kind == "reply.handled")).all()
    assert kinds == ["reply.handled"]
    caller = app.test_client()
    assert login(caller, "alice@test.fr", "x" * 12).status_code == 302
    assert caller.get("/reponses/").status_code == 403


def test_the_simulated_phone_posts_to_the_real_webhook(world, app, monkeypatch):
    from tests.conftest import login

    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", PUBLIC)
    reg = person(world, allow_sms=True, first_name="Noé")
    client = app.test_client()
    assert login(client, "alice@test.fr", "x" * 12).status_code == 302
    url = f"/prospects/{reg.prospect_id}/telephone-simule"
    html = client.get(url).get_data(as_text=True)
    assert "Téléphone simulé" in html
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    assert client.post(url, data={"csrf_token": token, "body": ""}).status_code == 400
    response = client.post(url, data={"csrf_token": token, "body": "Oui 👍"})
    assert response.status_code == 302
    page = client.get(url).get_data(as_text=True)
    assert "Réponse reçue par le CRM : « Merci Noé" in page and "Oui 👍" in page
    db.session.refresh(reg)
    assert reg.status == "confirmed"
    inbound = db.session.scalar(sa.select(InboundMessage))
    assert inbound.message_sid.startswith("SMsimule")


@pytest.mark.parametrize("setting,value", [("SMS_BACKEND", "twilio"), ("CRM_ENV", "production")])
def test_the_simulated_phone_exists_only_in_development_with_the_outbox(
    world, app, monkeypatch, setting, value
):
    """In production, even with the outbox (a staging server), no one may post replies in a
    person's name."""
    from tests.conftest import login

    monkeypatch.setitem(app.config, setting, value)
    reg = person(world, allow_sms=True)
    client = app.test_client()
    assert login(client, "alice@test.fr", "x" * 12).status_code == 302
    assert client.get(f"/prospects/{reg.prospect_id}/telephone-simule").status_code == 404
    page = client.get(f"/prospects/{reg.prospect_id}").get_data(as_text=True)
    assert "Téléphone simulé" not in page


def test_a_registration_changed_meanwhile_is_read_again_and_the_reply_applied(
    world, signed, monkeypatch
):
    """Two messages of one person processed at once: the second sees a newer version of the
    registration (StaleDataError) and is applied again on the fresh state, not lost."""
    reg = person(world, allow_sms=True)
    original = answers.confirm
    calls = []
    bump = sa.text("UPDATE registrations SET version = version + 1 WHERE id = :id")

    def confirm_after_a_concurrent_change(registration, via):
        calls.append(via)
        if len(calls) == 1:  # another process bumps the row between our read and our write
            if db.engine.dialect.name == "sqlite":
                # SQLite has one writer at a time and the webhook's transaction (the raw
                # message is inserted) holds the lock: the bump goes through its connection.
                db.session.execute(bump, {"id": registration.id})
            else:
                with db.engine.begin() as other:
                    other.execute(bump, {"id": registration.id})
        return original(registration, via)

    monkeypatch.setattr(answers, "confirm", confirm_after_a_concurrent_change)
    body = sms(signed, reg.prospect.phone, "oui").get_data(as_text=True)
    assert len(calls) == 2
    assert "confirmée" in body
    db.session.refresh(reg)
    assert reg.status == "confirmed"
    assert db.session.scalar(sa.select(InboundMessage.outcome)) == "applied"
