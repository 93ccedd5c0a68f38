"""After the lab: closing it (no-shows, thank-you, lab done), attendees invited to the next
lab by a real RQ job (once per attendee, even when the job runs twice), returning people
first in the callers' queue, motivated / active users and the series page."""

from __future__ import annotations

import html
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import Event, FollowUp, Lab, Prospect, Registration, Sequence, SequenceStep
from crm.redis_conn import connect
from crm.services import call_queue, dispatcher, lab_day, lab_series, registrations
from crm.services.lab_day import LabDayError
from crm.services.permissions import PermissionDenied
from crm.timeutil import to_local, utcnow
from tests.conftest import csrf_token
from tests.factories import person
from tests.integration.conftest import drain, lab_afternoon, saved_meanwhile
from tests.integration.test_labs import lab_form
from workers.queues import DEFAULT


@pytest.fixture
def past_lab(world):
    """The world's lab took place yesterday afternoon (14:00–18:00 Paris time, whatever the
    hour the tests run at); a next lab of the series is 6 weeks away."""
    lab = world["lab"]
    lab.starts_at = lab_afternoon(days=-1)
    lab.ends_at = lab.starts_at + timedelta(hours=4)
    starts = lab_afternoon(days=42)
    following = Lab(
        title="Lab 2",
        starts_at=starts,
        ends_at=starts + timedelta(hours=4),
        status="recruiting",
    )
    db.session.add(following)
    db.session.commit()
    world["next"] = following
    return world


def checked_in(world, **fields) -> Registration:
    registration = person(world, "confirmed", allow_sms=True, **fields)
    registrations.transition(registration, "attended", None, "Accueil")
    db.session.commit()
    return registration


def rows_of(registration: Registration, kind: str) -> list[FollowUp]:
    return list(
        db.session.scalars(
            sa.select(FollowUp)
            .join(SequenceStep, SequenceStep.id == FollowUp.step_id)
            .join(Sequence, Sequence.id == SequenceStep.sequence_id)
            .where(FollowUp.registration_id == registration.id, Sequence.kind == kind)
        )
    )


def in_next_lab(world) -> list[Registration]:
    return list(
        db.session.scalars(sa.select(Registration).where(Registration.lab_id == world["next"].id))
    )


def test_closing_marks_no_shows_thanks_the_present_and_ends_the_lab(past_lab):
    present = checked_in(past_lab)
    absent = person(past_lab, "confirmed")
    pending = person(past_lab, "interested")
    closing = lab_day.close(past_lab["lab"], past_lab["manager"])
    assert (closing.no_shows, closing.thanked) == (1, 1)
    assert absent.status == "no_show" and present.status == "attended"
    assert past_lab["lab"].status == "done"
    thanks = rows_of(present, "thank_you")
    assert thanks and all(row.status == "scheduled" for row in thanks)
    assert all(row.status != "scheduled" for row in rows_of(pending, "invitation"))
    assert rows_of(absent, "thank_you") == []
    with pytest.raises(LabDayError, match="déjà clos"):
        lab_day.close(past_lab["lab"], past_lab["manager"])


def test_a_lab_cannot_be_closed_before_it_starts(world):
    with pytest.raises(LabDayError, match="pas encore commencé"):
        lab_day.close(world["lab"], world["manager"])
    assert world["lab"].status == "recruiting"


def test_attendees_are_invited_to_the_next_lab_once_and_called_first(app, past_lab, monkeypatch):
    past_lab["lab"].next_lab_id = past_lab["next"].id
    db.session.commit()
    present = [checked_in(past_lab, organisation=f"Mairie {i}") for i in range(3)]
    newcomer = person(past_lab, "to_contact")
    newcomer_next, _ = registrations.register(newcomer.prospect, past_lab["next"], None)
    newcomer_next.next_call_at = utcnow() - timedelta(days=3)  # waiting longer
    db.session.commit()

    closing = lab_day.close(past_lab["lab"], past_lab["manager"])
    assert closing.invitations_queued
    assert lab_day.queue_invitations(past_lab["lab"])  # asked twice: one job
    drain(app, monkeypatch, DEFAULT)
    assert lab_day.invite_attendees(past_lab["lab"].id) == 0  # the job again: nothing new
    registered = {r.prospect_id: r for r in in_next_lab(past_lab)}
    assert set(registered) == {r.prospect_id for r in present} | {newcomer.prospect_id}
    for attendee in present:
        again = registered[attendee.prospect_id]
        assert again.call_rank == lab_day.RETURNING_RANK and again.status == "to_contact"
        assert rows_of(again, "invitation"), "the invitation sequence starts"
    created = db.session.scalars(
        sa.select(Event).where(
            Event.lab_id == past_lab["next"].id, Event.kind == "registration.created"
        )
    ).all()
    assert sorted(e.prospect_id for e in created) == sorted(
        [r.prospect_id for r in present] + [newcomer.prospect_id]
    )
    # The callers' queue serves the returning attendees before someone waiting longer.
    for registration in registered.values():
        registration.next_call_at = utcnow() - timedelta(hours=1)
    newcomer_next.next_call_at = utcnow() - timedelta(days=3)
    db.session.commit()
    served = call_queue.next_call(past_lab["next"].id, past_lab["alice"])
    assert served.registration.prospect_id in {r.prospect_id for r in present}


def test_linking_the_next_lab_after_closing_invites_the_attendees(
    app, past_lab, manager_client, monkeypatch
):
    attendee = checked_in(past_lab)
    lab_day.close(past_lab["lab"], past_lab["manager"])
    url = f"/labs/{past_lab['lab'].id}/apres"
    token = csrf_token(manager_client, url)
    response = manager_client.post(
        f"{url}/suivant", data={"csrf_token": token, "next_lab": str(past_lab["next"].id)}
    )
    assert response.status_code == 302
    drain(app, monkeypatch, DEFAULT)
    assert [r.prospect_id for r in in_next_lab(past_lab)] == [attendee.prospect_id]
    page = manager_client.get(url).get_data(as_text=True)
    assert "1 présent de ce lab y est inscrit" in page


def test_the_next_lab_must_come_after_and_still_recruit(past_lab, manager_client):
    earlier = Lab(
        title="Lab 0",
        starts_at=utcnow() - timedelta(days=40),
        ends_at=utcnow() - timedelta(days=40) + timedelta(hours=3),
        status="done",
    )
    db.session.add(earlier)
    db.session.commit()
    url = f"/labs/{past_lab['lab'].id}/apres"
    token = csrf_token(manager_client, url)
    for bad in (str(earlier.id), "abc", str(past_lab["lab"].id), ""):
        response = manager_client.post(
            f"{url}/suivant", data={"csrf_token": token, "next_lab": bad}
        )
        assert response.status_code == 400
        assert "Choisissez un open lab dans la liste." in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Lab, past_lab["lab"].id).next_lab_id is None


def test_motivated_and_active_users_only_among_attendees(past_lab, manager_client):
    attendee = checked_in(past_lab)
    absent = person(past_lab, "confirmed")
    url = f"/labs/{past_lab['lab'].id}/apres"
    token = csrf_token(manager_client, url)
    manager_client.post(f"{url}/{attendee.id}/motive", data={"csrf_token": token, "value": "1"})
    manager_client.post(f"{url}/{attendee.id}/actif", data={"csrf_token": token, "value": "1"})
    response = manager_client.post(
        f"{url}/{absent.id}/motive", data={"csrf_token": token, "value": "1"}
    )
    page = manager_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Seules les personnes présentes au lab peuvent être signalées ainsi." in page
    db.session.expire_all()
    assert attendee.prospect.motivated_at is not None
    assert attendee.prospect.active_user_at is not None
    assert absent.prospect.motivated_at is None
    kinds = db.session.scalars(
        sa.select(Event.kind).where(Event.prospect_id == attendee.prospect_id)
    ).all()
    assert "prospect.motivated" in kinds and "prospect.active_user" in kinds
    manager_client.post(f"{url}/{attendee.id}/motive", data={"csrf_token": token, "value": "0"})
    db.session.expire_all()
    assert attendee.prospect.motivated_at is None


def test_closing_or_flagging_while_someone_saves_a_person_changes_nothing(past_lab, manager_client):
    attendee = checked_in(past_lab)
    absent = person(past_lab, "confirmed")
    url = f"/labs/{past_lab['lab'].id}/apres"
    token = csrf_token(manager_client, url)
    with saved_meanwhile(Registration, absent.id):
        response = manager_client.post(f"{url}/clore", data={"csrf_token": token})
    assert response.status_code == 302
    page = html.unescape(manager_client.get(response.headers["Location"]).get_data(as_text=True))
    assert "modifiée par quelqu'un d'autre au même instant : rien n'a été enregistré" in page
    db.session.expire_all()
    assert past_lab["lab"].status != "done" and absent.status == "confirmed"
    assert rows_of(attendee, "thank_you") == []

    with saved_meanwhile(Prospect, attendee.prospect_id):
        response = manager_client.post(
            f"{url}/{attendee.id}/motive", data={"csrf_token": token, "value": "1"}
        )
    page = html.unescape(manager_client.get(response.headers["Location"]).get_data(as_text=True))
    assert "rien n'a été enregistré" in page
    db.session.expire_all()
    assert attendee.prospect.motivated_at is None


def test_series_counts_confirmed_present_no_show_and_returning(past_lab, manager_client):
    first, second = past_lab["lab"], past_lab["next"]
    first.next_lab_id = second.id
    db.session.commit()
    came_twice = checked_in(past_lab)
    checked_in(past_lab)
    person(past_lab, "confirmed")
    lab_day.close(first, past_lab["manager"])
    lab_day.invite_attendees(first.id)
    again = db.session.scalar(
        sa.select(Registration).where(
            Registration.lab_id == second.id,
            Registration.prospect_id == came_twice.prospect_id,
        )
    )
    registrations.transition(again, "confirmed", None)
    registrations.transition(again, "attended", None)
    came_twice.prospect.active_user_at = utcnow()
    db.session.commit()
    series = lab_series.series_of(second)
    assert [row.lab.id for row in series.labs] == [first.id, second.id]
    one, two = series.labs
    assert (one.confirmed, one.present, one.no_show, one.no_show_rate) == (3, 2, 1, 33)
    assert (two.present, two.returning, two.active) == (1, 1, 1)
    assert (series.people_present, series.active, series.active_rate) == (2, 1, 50)
    page = manager_client.get(f"/labs/{first.id}/serie").get_data(as_text=True)
    assert "Lab 2" in page and "2 personnes différentes sont venues" in page


def test_lab_day_pages_are_for_managers(past_lab, caller_client):
    lab_id = past_lab["lab"].id
    assert caller_client.get(f"/labs/{lab_id}/apres").status_code == 403
    assert caller_client.get(f"/labs/{lab_id}/serie").status_code == 403


def test_editing_a_closed_lab_to_add_its_next_lab_invites_the_attendees(
    app, past_lab, manager_client, monkeypatch
):
    attendee = checked_in(past_lab)
    lab = past_lab["lab"]
    lab_day.close(lab, past_lab["manager"])
    start, end = to_local(lab.starts_at), to_local(lab.ends_at)
    form = lab_form(
        title=lab.title,
        day=start.date().isoformat(),
        start=start.strftime("%H:%M"),
        end=end.strftime("%H:%M"),
        status="done",
        next_lab_id=str(past_lab["next"].id),
    )
    url = f"/labs/{lab.id}/modifier"
    form["csrf_token"] = csrf_token(manager_client, url)
    assert manager_client.post(url, data=form).status_code == 302
    drain(app, monkeypatch, DEFAULT)
    assert [r.prospect_id for r in in_next_lab(past_lab)] == [attendee.prospect_id]


def test_two_invitation_jobs_at_the_same_time_register_each_attendee_once(app, past_lab):
    """Two workers running the job at once: one may hit the unique constraint and retries;
    every attendee ends with exactly one registration in the next lab."""
    past_lab["lab"].next_lab_id = past_lab["next"].id
    db.session.commit()
    present = [checked_in(past_lab) for _ in range(20)]
    lab_day.close(past_lab["lab"], None)
    lab_id, barrier, results, errors = past_lab["lab"].id, threading.Barrier(2), [], []

    def run() -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                results.append(lab_day.invite_attendees(lab_id))
            except Exception as exc:
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(results) == len(present)
    db.session.expire_all()
    registered = [r.prospect_id for r in in_next_lab(past_lab)]
    assert sorted(registered) == sorted(r.prospect_id for r in present)


def test_a_caller_cannot_close_a_lab_even_without_the_page(past_lab):
    with pytest.raises(PermissionDenied, match="réservée aux responsables"):
        lab_day.close(past_lab["lab"], past_lab["alice"])
    with pytest.raises(PermissionDenied):
        lab_day.link_next(past_lab["lab"], past_lab["next"].id, actor=past_lab["bob"])
    assert past_lab["lab"].status == "recruiting"


def test_the_lab_form_cannot_end_a_lab_without_closing_it(past_lab, manager_client):
    lab = past_lab["lab"]
    start, end = to_local(lab.starts_at), to_local(lab.ends_at)
    form = lab_form(
        title=lab.title,
        day=start.date().isoformat(),
        start=start.strftime("%H:%M"),
        end=end.strftime("%H:%M"),
        status="done",
    )
    url = f"/labs/{lab.id}/modifier"
    form["csrf_token"] = csrf_token(manager_client, url)
    response = manager_client.post(url, data=form)
    assert response.status_code == 400
    assert "Clore l&#39;open lab" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Lab, lab.id).status == "recruiting"


def test_attendees_are_still_invited_when_redis_was_down_at_closing(
    app, past_lab, manager_client, monkeypatch
):
    attendee = checked_in(past_lab)
    lab = past_lab["lab"]
    lab.next_lab_id = past_lab["next"].id
    db.session.commit()
    url = f"/labs/{lab.id}/apres"
    token = csrf_token(manager_client, url)
    # A real client on a closed port: the lab is committed closed, then the job cannot be
    # queued. The manager still gets the closing's message, not an error page.
    monkeypatch.setitem(app.extensions, "crm_redis", connect("redis://127.0.0.1:1/0"))
    response = manager_client.post(f"{url}/clore", data={"csrf_token": token})
    assert response.status_code == 302
    monkeypatch.delitem(app.extensions, "crm_redis")
    db.session.expire_all()
    assert db.session.get(Lab, lab.id).status == "done"
    assert in_next_lab(past_lab) == []
    with app.app_context():
        assert dispatcher.run()["next_lab_invitations"] == 1
    drain(app, monkeypatch, DEFAULT)
    assert [r.prospect_id for r in in_next_lab(past_lab)] == [attendee.prospect_id]
    with app.app_context():  # everyone is in: nothing more to queue
        assert dispatcher.run()["next_lab_invitations"] == 0


def test_a_refusal_is_announced_as_an_alert(world, manager_client):
    url = f"/labs/{world['lab'].id}/apres"
    token = csrf_token(manager_client, url)
    response = manager_client.post(f"{url}/clore", data={"csrf_token": token})
    page = manager_client.get(response.headers["Location"]).get_data(as_text=True)
    alert = page.split('role="alert"', 1)[1].split("</div>", 1)[0]
    assert "pas encore commencé" in alert
