"""The funnel on a small hand-built data set with known answers: people who go back and forth
between statuses, a person in two labs, calls by two callers, messages, an SMS reply, a
no-show and an opt-out."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import Call, Consent, FollowUp, InboundMessage, Lab, Message, Source
from crm.redis_conn import get_redis
from crm.services import funnel, registrations
from crm.services.funnel import Period, Scope
from crm.timeutil import to_local, utcnow
from tests.factories import person
from tests.integration.conftest import lab_afternoon


def call(registration, caller, outcome: str, days_ago: float) -> None:
    db.session.add(
        Call(
            prospect_id=registration.prospect_id,
            lab_id=registration.lab_id,
            registration_id=registration.id,
            caller_id=caller.id,
            outcome=outcome,
            created_at=utcnow() - timedelta(days=days_ago),
        )
    )


def sent_message(registration) -> None:
    row = db.session.scalars(
        sa.select(FollowUp).where(FollowUp.registration_id == registration.id)
    ).first()
    message = Message(
        channel="sms", backend="outbox", to_address="+33600000000", body="x", status="sent"
    )
    db.session.add(message)
    db.session.flush()
    row.status, row.sent_at, row.message_id = "sent", utcnow(), message.id


def move(registration, *statuses: str) -> None:
    for status in statuses:
        registrations.transition(registration, status, None, "test")


@pytest.fixture
def data(world):
    lab1 = world["lab"]
    lab1.starts_at = utcnow() - timedelta(days=50)
    lab1.ends_at = lab1.starts_at + timedelta(hours=4)
    starts = lab_afternoon(days=10)
    lab2 = Lab(title="Lab 2", starts_at=starts, ends_at=starts + timedelta(hours=4))
    source_b = Source(name="Salon")
    db.session.add_all([lab2, source_b])
    db.session.commit()
    alice, bob = world["alice"], world["bob"]
    source_a = world["source"]
    p = {}
    p["p1"] = person(world)
    call(p["p1"], alice, "no_answer", 5)
    p["p2"] = person(world)
    call(p["p2"], alice, "interested", 5)
    move(p["p2"], "interested")
    p["p3"] = person(world)
    call(p["p3"], alice, "confirmed", 6)
    move(p["p3"], "confirmed", "attended")
    p["p3_lab2"], _ = registrations.register(p["p3"].prospect, lab2, None)
    move(p["p3_lab2"], "confirmed", "attended")
    p["p3"].prospect.active_user_at = utcnow()
    p["p8"] = person(world)
    world["source"] = source_b
    p["p4"] = person(world)
    sent_message(p["p4"])
    db.session.add(
        Consent(
            prospect_id=p["p4"].prospect_id,
            channel="sms",
            granted=False,
            from_person=True,
            method="sms_keyword",
        )
    )
    p["p5"] = person(world)
    sent_message(p["p5"])
    db.session.add(
        InboundMessage(
            message_sid="SM1",
            from_number="+33600000001",
            prospect_id=p["p5"].prospect_id,
            registration_id=p["p5"].id,
            body="Peut-être",
        )
    )
    p["p6"] = person(world)
    call(p["p6"], bob, "confirmed", 2)
    move(p["p6"], "confirmed", "declined")  # back and forth: it was confirmed once
    p["p7"] = person(world)
    call(p["p7"], bob, "confirmed", 4)
    move(p["p7"], "confirmed", "no_show")
    db.session.commit()
    world["source"] = source_a
    return {"lab1": lab1, "lab2": lab2, "a": source_a, "b": source_b, **p}


def counts(row) -> list[int]:
    return [row.counts[step] for step in funnel.STEPS]


def test_funnel_per_source(data):
    result = funnel.compute(Scope("source"))
    rows = {row.key: row for row in result.rows}
    a, b = rows[data["a"].id], rows[data["b"].id]
    # invited, contacted, reached, interested, confirmed, present, returned, active
    assert counts(a) == [5, 4, 3, 3, 2, 2, 1, 2]
    assert counts(b) == [4, 4, 3, 2, 2, 0, 0, 0]
    assert (a.label, b.label) == ("Annuaire", "Salon")
    assert (b.calls, b.messages, b.calls_per_confirmed, b.messages_per_confirmed) == (2, 2, 1, 1)
    assert (b.no_shows, b.no_show_rate, b.opted_out, b.opt_out_rate) == (1, 100, 1, 25)
    assert a.no_show_rate == 0 and a.calls == 3
    assert b.median_days_to_confirm == pytest.approx(3.0, abs=0.1)  # 2 and 4 days
    assert a.median_days_to_confirm == pytest.approx(6.0, abs=0.1)  # one person, no contact
    assert result.total.median_days_to_confirm == pytest.approx(4.0, abs=0.1)  # 2, 4, 6
    assert counts(result.total) == [9, 8, 6, 5, 4, 2, 1, 2]
    assert b.rate("reached") == 75 and b.overall("confirmed") == 50
    assert a.rate("returned") == 50 and a.rate("active") == 100  # both out of the present


def test_funnel_per_caller_counts_only_who_they_called(data):
    result = funnel.compute(Scope("caller"))
    alice = next(r for r in result.rows if r.label == "alice@test.fr")
    bob = next(r for r in result.rows if r.label == "bob@test.fr")
    assert counts(alice) == [3, 3, 2, 2, 1, 1, 1, 1]
    assert counts(bob) == [2, 2, 2, 2, 2, 0, 0, 0]
    assert counts(result.total) == [5, 5, 4, 4, 3, 1, 1, 1]
    assert result.total.median_days_to_confirm == pytest.approx(4.0, abs=0.1)
    own = funnel.compute(Scope("caller", caller_id=bob.key))
    assert [r.label for r in own.rows] == ["bob@test.fr"]


def test_funnel_per_lab_and_for_one_lab(data):
    result = funnel.compute(Scope("lab"))
    rows = {row.key: row for row in result.rows}
    assert rows[data["lab1"].id].counts["invited"] == 8
    assert counts(rows[data["lab2"].id]) == [1, 1, 1, 1, 1, 1, 0, 1]
    one = funnel.compute(Scope("source", lab_id=data["lab2"].id))
    assert [(r.key, r.counts["present"]) for r in one.rows] == [(data["a"].id, 1)]


def test_the_period_selects_the_registrations_made_in_it(data):
    today = to_local(utcnow()).date()
    assert funnel.compute(Scope("source", Period(end=today - timedelta(days=1)))).rows == []
    assert (
        funnel.compute(Scope("source", Period(start=today, end=today))).total.counts["invited"] == 9
    )


def test_each_figure_has_its_people(data):
    query = funnel.people_query(Scope("source"), data["a"].id, "confirmed")
    assert set(db.session.scalars(query)) == {data["p3"].id, data["p3_lab2"].id}
    everyone = funnel.people_query(Scope("source"), None, "contacted")
    assert len(set(db.session.scalars(everyone))) == 8


def test_the_cached_funnel_is_at_most_a_minute_old(data):
    first = funnel.funnel(Scope("source"))
    key = funnel._cache_key(Scope("source"))
    assert 0 < get_redis().ttl(key) <= funnel.CACHE_SECONDS
    assert counts(funnel.funnel(Scope("source")).total) == counts(first.total)


def test_wanted_scopes_are_refreshed_in_the_background(data, world):
    scope = Scope("lab")
    before = funnel.funnel(scope)
    assert before.total.counts["invited"] == 9
    person(world)  # a new registration: the cached figures do not see it yet
    assert funnel.funnel(scope).total.counts["invited"] == 9
    assert funnel.refresh_wanted() == 1
    after = funnel.funnel(scope)
    assert after.total.counts["invited"] == 10 and after.computed_at >= before.computed_at
    # A scope nobody asked for in the last ten minutes is dropped from the refresh.
    get_redis().zadd(funnel.WANTED_KEY, {funnel._scope_id(scope): 0})
    assert funnel.refresh_wanted() == 0


def test_a_callers_row_counts_only_their_own_calls(data, world):
    call(data["p2"], world["bob"], "no_answer", 1)  # Bob calls Alice's person once
    call(data["p2"], world["bob"], "no_answer", 1)
    db.session.commit()
    result = funnel.compute(Scope("caller"))
    alice = next(r for r in result.rows if r.label == "alice@test.fr")
    bob = next(r for r in result.rows if r.label == "bob@test.fr")
    assert (alice.calls, bob.calls) == (3, 4)
    assert bob.counts["invited"] == 3 and result.total.counts["invited"] == 5
    own = funnel.compute(Scope("caller", caller_id=world["bob"].id))
    assert own.rows[0].calls == 4
