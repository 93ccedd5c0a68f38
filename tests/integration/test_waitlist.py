"""Capacity and the waiting list on the real stack: confirmations past the capacity, the
overbooking margin, and the promotion chain (decline → offer → expiry → next person), with
offers sent by a real RQ worker through the outbox and answered by the personal link.

Time is never frozen: `waitlist.tick(now)` takes explicit times to expire offers.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import Event, Lab, Message, PlaceOffer, Registration
from crm.services import answers, calls, dispatcher, offer_sending, registrations, waitlist
from crm.services.personal_links import registration_for
from crm.services.sequences import personal_link
from crm.timeutil import utcnow
from tests.conftest import csrf_token
from tests.factories import person
from tests.integration.conftest import drain


@pytest.fixture
def small_lab(world):
    """The world's lab with 2 places and nobody confirmed yet."""
    world["lab"].capacity, world["lab"].target = 2, 2
    db.session.commit()
    return world


def invited(world, **fields) -> Registration:
    reachable = {"allow_sms": True, "allow_email": True, "email": None}
    return person(world, "interested", **{**reachable, **fields})


def confirm(registration: Registration) -> answers.Confirmation:
    result = answers.confirm(registration, "link")
    db.session.commit()
    return result


def offers_of(registration: Registration) -> list[PlaceOffer]:
    return list(
        db.session.scalars(
            sa.select(PlaceOffer)
            .where(PlaceOffer.registration_id == registration.id)
            .order_by(PlaceOffer.number)
        )
    )


def place_freed(world, *waiting: Registration) -> None:
    """The lab full (two confirmed), `waiting` on the list in that order, then one of the
    confirmed declines: one place is free for the next pass."""
    confirm(invited(world))
    leaving = invited(world)
    confirm(leaving)
    for registration in waiting:
        confirm(registration)
    answers.decline(leaving, "sms")
    db.session.commit()


def test_confirmations_past_the_capacity_join_the_waiting_list_in_order(small_lab):
    first, second, third, fourth = (invited(small_lab) for _ in range(4))
    assert confirm(first).status == confirm(second).status == "confirmed"
    late = confirm(third)
    assert (late.status, late.rank) == ("waitlisted", 1)
    assert confirm(fourth).rank == 2
    assert third.status == "waitlisted" and third.waitlisted_at is not None
    assert waitlist.taken(small_lab["lab"].id) == 2
    assert [r.id for r in waitlist.waiting_list(small_lab["lab"].id)] == [third.id, fourth.id]
    # A waitlisted person gets no reminder before the lab, and no more invitations.
    event = db.session.scalars(
        sa.select(Event)
        .where(Event.registration_id == third.id, Event.kind == "followup.intent")
        .order_by(Event.id.desc())
    ).first()
    assert event.data["intents"] == ["stop_invitation"]
    # Saying yes again while the lab is still full changes nothing.
    again = confirm(third)
    assert (again.status, again.rank) == ("still_waitlisted", 1)


def test_a_freed_place_goes_to_the_waiting_list_first(small_lab):
    """Between a refusal and the dispatcher's next pass, a newcomer's yes does not take the
    place of the first person in line; that person's own yes does."""
    first, second = invited(small_lab), invited(small_lab)
    place_freed(small_lab, first, second)
    assert waitlist.free_places(small_lab["lab"]) == 1
    assert confirm(invited(small_lab)).status == "waitlisted"
    assert confirm(second).status == "still_waitlisted"  # second in line
    assert confirm(first).status == "confirmed"
    assert waitlist.free_places(small_lab["lab"]) == 0


def test_overbooking_margin_confirms_past_the_capacity(small_lab):
    small_lab["lab"].overbooking = 1
    db.session.commit()
    people = [invited(small_lab) for _ in range(4)]
    statuses = [confirm(r).status for r in people]
    assert statuses == ["confirmed", "confirmed", "confirmed", "waitlisted"]
    assert waitlist.places(small_lab["lab"]) == 3


def test_a_caller_confirming_into_a_full_lab_is_told_the_rank(small_lab):
    for _ in range(2):
        confirm(invited(small_lab))
    registration = invited(small_lab)
    registration.status  # noqa: B018 - loaded before the transition
    registrations.transition(registration, "confirmed", small_lab["alice"], "Appel")
    db.session.commit()
    message, category = calls.saved_message(registration, "confirmed")
    assert registration.status == "waitlisted"
    assert "liste d'attente (rang 1)" in message and category == "warning"


def test_decline_offer_expiry_and_next_person(app, small_lab, open_window, fast_pace, monkeypatch):
    lab = small_lab["lab"]
    first, second = invited(small_lab), invited(small_lab)
    confirm(first), confirm(second)
    waiting_a, waiting_b = invited(small_lab), invited(small_lab)
    confirm(waiting_a), confirm(waiting_b)

    # A confirmed person declines: the next pass offers the place to the first in line.
    answers.decline(second, "sms")
    db.session.commit()
    report = dispatcher.run()
    assert report["offers_made"] == 1 and report["offers_enqueued"] == 1
    drain(app, monkeypatch)
    (offer,) = offers_of(waiting_a)
    assert offer.status == "sent" and offer.channel == "sms"
    assert offer.expires_at == offer.sent_at + timedelta(hours=24)
    sms = db.session.get(Message, offer.message_id)
    assert "une place s'est libérée" in sms.body and personal_link(waiting_a.id) in sms.body
    assert offers_of(waiting_b) == []
    # The place is held: a newcomer's yes goes to the waiting list.
    assert confirm(invited(small_lab)).status == "waitlisted"

    # No answer within 24 hours: the offer expires and the next person gets one.
    report = waitlist.tick(offer.expires_at + timedelta(minutes=1))
    assert report == {"offers_expired": 1, "offers_made": 1}
    db.session.expire_all()
    assert offers_of(waiting_a)[0].status == "expired"
    (offer_b,) = offers_of(waiting_b)
    assert offer_b.status == "scheduled"
    dispatcher.run()
    drain(app, monkeypatch)
    db.session.expire_all()
    assert offers_of(waiting_b)[0].status == "sent"

    # The second person takes it with the link: confirmed, offer accepted, reminders planned.
    assert confirm(waiting_b).status == "confirmed"
    assert offers_of(waiting_b)[0].status == "accepted"
    assert waitlist.taken(lab.id) == 2

    # The first person answers after the deadline: a clear answer, and no place taken.
    late = confirm(waiting_a)
    assert (late.status, late.offer_expired) == ("still_waitlisted", True)
    assert waiting_a.status == "waitlisted" and waitlist.taken(lab.id) == 2

    # A running job enqueued twice sends once: the offer is not scheduled any more.
    assert offer_sending.send(offer_b.id) == "accepted"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 2


def test_a_person_is_offered_a_place_at_most_three_times(small_lab, open_window, fast_pace):
    lab = small_lab["lab"]
    waiting = invited(small_lab)
    place_freed(small_lab, waiting)
    now = utcnow()
    for number in (1, 2, 3):
        assert waitlist.tick(now)["offers_made"] == 1
        offer = offers_of(waiting)[-1]
        assert offer.number == number
        assert offer_sending.send(offer.id) == "sent"
        now = offer.expires_at + timedelta(minutes=1)
    assert waitlist.tick(now) == {"offers_expired": 1, "offers_made": 0}
    assert waiting.offers_made == 3 and waitlist.free_places(lab) == 1


def test_fewest_offers_first_then_rank(small_lab, open_window, fast_pace):
    first, second = invited(small_lab), invited(small_lab)
    place_freed(small_lab, first, second)
    waitlist.tick(utcnow())
    offer = offers_of(first)[0]
    offer_sending.send(offer.id)
    waitlist.tick(offer.expires_at + timedelta(minutes=1))
    assert [o.number for o in offers_of(second)] == [1]  # the place passed to the next person
    assert [o.status for o in offers_of(first)] == ["expired"]


def test_nobody_is_offered_a_place_they_cannot_be_told_about(small_lab, open_window):
    unreachable = invited(small_lab, allow_sms=False)
    reachable = invited(small_lab, allow_sms=False, email="ana@exemple.fr")
    place_freed(small_lab, unreachable, reachable)
    waitlist.tick(utcnow())
    assert offers_of(unreachable) == []
    (offer,) = offers_of(reachable)
    assert offer_sending.send(offer.id) == "sent" and offer.channel == "email"


def test_an_offer_waits_for_the_send_window(small_lab, monkeypatch):
    monkeypatch.setattr(offer_sending, "is_open", lambda now, window: False)
    waiting = invited(small_lab)
    place_freed(small_lab, waiting)
    waitlist.tick(utcnow())
    (offer,) = offers_of(waiting)
    assert offer_sending.enqueue_due(utcnow()) == 0
    assert offer_sending.send(offer.id) == "scheduled" and offer.message_id is None


def test_declining_while_holding_an_offer_frees_it_for_the_next(small_lab, open_window):
    first, second = invited(small_lab), invited(small_lab)
    place_freed(small_lab, first, second)
    waitlist.tick(utcnow())
    answers.decline(first, "link")
    db.session.commit()
    assert offers_of(first)[0].status == "cancelled"
    waitlist.tick(utcnow())
    assert len(offers_of(second)) == 1


def test_an_offer_accepted_after_it_expired_shows_a_clear_page(app, small_lab, open_window, client):
    late, other = invited(small_lab), invited(small_lab)
    place_freed(small_lab, late, other)
    waitlist.tick(utcnow())
    offer = offers_of(late)[0]
    offer_sending.send(offer.id)
    path = personal_link(late.id).split("/r/", 1)[1]
    page = client.get(f"/r/{path}").get_data(as_text=True)
    assert "Une place s&#39;est libérée pour vous ! Elle vous est réservée jusqu" in page
    waitlist.tick(offer.expires_at + timedelta(minutes=1))
    # The place went to the next person, who took it.
    assert confirm(other).status == "confirmed"
    token = csrf_token(client, f"/r/{path}")
    response = client.post(f"/r/{path}/confirmer", data={"csrf_token": token})
    assert response.status_code == 303
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Le délai pour accepter la place proposée est dépassé" in html
    db.session.expire_all()
    assert db.session.get(Registration, late.id).status == "waitlisted"
    assert registration_for(path).registration.status == "waitlisted"
    assert waitlist.taken(small_lab["lab"].id) == 2


def test_the_lab_lock_does_not_hold_up_inserts_that_only_reference_the_lab(small_lab):
    """PostgreSQL: lock_lab excludes another lock_lab, not an insert referencing the lab (an
    event, a task), whose foreign key check takes a key-share lock on the lab row: with FOR
    UPDATE every webhook of the lab waited for a confirmation's commit, or deadlocked."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises every write anyway")
    lab_id = small_lab["lab"].id
    waitlist.lock_lab(lab_id)
    with db.engine.connect() as other:
        other.execute(sa.text("SET lock_timeout = '2s'"))
        other.execute(sa.insert(Event).values(kind="reply.received", lab_id=lab_id))
        with pytest.raises(sa.exc.OperationalError):  # a second lock_lab still waits
            other.execute(sa.select(Lab.id).where(Lab.id == lab_id).with_for_update(key_share=True))
        other.rollback()
    db.session.rollback()
