"""Retention: anonymise people RETENTION_DAYS after the last contact that came from them."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from rq.cron import CronScheduler

import workers.jobs
from crm.extensions import db
from crm.models import AuditEntry, Lab, Prospect, Suppression
from crm.redis_conn import get_redis
from crm.services import personal_links, replies, retention, sequences
from crm.services.prospects import ProspectInput, save, set_permission
from crm.services.registrations import register
from crm.timeutil import utcnow

_phones = iter(range(10_000_000, 99_999_999, 7919))
NOW = utcnow().replace(microsecond=0) + timedelta(days=4000)  # every world lab is over
DAY = timedelta(days=1)


def person(world, name: str, created_days_ago: int, contact_days_ago: int | None = None):
    prospect = Prospect(
        source=world["source"],
        first_name=name,
        phone=f"+336{next(_phones)}",
        created_at=NOW - created_days_ago * DAY,
        last_person_contact_at=None if contact_days_ago is None else NOW - contact_days_ago * DAY,
    )
    db.session.add(prospect)
    db.session.commit()
    return prospect


def lab_ending_after(days: int) -> Lab:
    lab = Lab(
        title="Lab à venir",
        starts_at=NOW + (days - 1) * DAY,
        ends_at=NOW + days * DAY,
        status="recruiting",
    )
    db.session.add(lab)
    db.session.commit()
    return lab


def test_who_is_due(world):
    old = person(world, "Ancien", created_days_ago=1100)
    answered = person(world, "Répondu", created_days_ago=2000, contact_days_ago=10)
    recent = person(world, "Récent", created_days_ago=100)
    lapsed = person(world, "Lointain", created_days_ago=2000, contact_days_ago=1096)
    registered = person(world, "Inscrit", created_days_ago=2000)
    register(registered, lab_ending_after(5), None)
    db.session.commit()
    assert [p.id for p in retention.due(NOW)] == [old.id, lapsed.id]
    assert answered.id and recent.id  # kept: contact 10 days ago, created 100 days ago
    # Once the lab is over, the registered person is due too.
    assert registered.id in [p.id for p in retention.due(NOW + 6 * DAY)]


def test_run_anonymises_and_audits_once(world):
    old = person(world, "Ancien", created_days_ago=1100)
    kept = person(world, "Gardé", created_days_ago=1100, contact_days_ago=20)
    assert retention.run(NOW) == [old.id]
    assert retention.run(NOW) == []  # safe to run twice
    db.session.expire_all()
    assert db.session.get(Prospect, old.id).erased_at == NOW
    assert db.session.get(Prospect, old.id).phone is None
    assert db.session.get(Prospect, kept.id).erased_at is None
    entry = db.session.scalar(sa.select(AuditEntry))
    assert entry.action == "retention.anonymised" and entry.object_id == old.id
    assert entry.actor_label == retention.JOB_LABEL and entry.actor_id is None
    assert entry.detail["duree_jours"] == 1095
    assert entry.detail["dernier_contact"] == (NOW - 1100 * DAY).date().isoformat()


def test_an_anonymised_person_may_be_invited_again_one_day(world):
    """Retention is not an erasure at the person's request: no suppression list entry."""
    old = person(world, "Ancien", created_days_ago=1100)
    phone = old.phone
    retention.run(NOW)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 0
    again, created = save(ProspectInput(first_name="Ancien", phone=phone), world["source"], None)
    assert created and again.phone == phone


def test_the_period_is_configurable(world, app, monkeypatch):
    monkeypatch.setitem(app.config, "RETENTION_DAYS", 30)
    month = person(world, "Mois", created_days_ago=40)
    person(world, "Semaine", created_days_ago=7)
    assert retention.run(NOW, dry_run=True) == [month.id]
    db.session.expire_all()
    assert db.session.get(Prospect, month.id).erased_at is None  # a dry run changes nothing


def test_the_warning_list(world):
    soon = person(world, "Bientôt", created_days_ago=1095 - 10)
    person(world, "Plus tard", created_days_ago=1095 - 40)
    person(world, "Répondu", created_days_ago=1095 - 10, contact_days_ago=2)
    listed = retention.upcoming(NOW)
    assert [(u.prospect.id, u.anonymised_on) for u in listed] == [(soon.id, NOW + 10 * DAY)]


def test_the_warning_page(world, manager_client):
    soon = person(world, "Bientôt", created_days_ago=1095 - 10)
    soon.created_at = utcnow() - (1095 - 10) * DAY
    person(world, "Jeune", created_days_ago=0).created_at = utcnow()
    db.session.commit()
    html = manager_client.get("/conservation/").get_data(as_text=True)
    assert "Bientôt" in html and "Jeune" not in html
    assert "1 personne à anonymiser dans les 30 prochains jours" in html


def test_callers_do_not_see_the_warning_page(caller_client):
    assert caller_client.get("/conservation/").status_code == 403


def test_a_reply_from_the_person_restarts_the_clock(world):
    prospect = person(world, "Sms", created_days_ago=0)
    prospect.created_at = utcnow() - 1200 * DAY
    db.session.commit()
    assert retention.due(utcnow()) == [prospect]
    replies.receive({"MessageSid": "SM9", "From": prospect.phone, "Body": "Bonjour ?"})
    db.session.expire_all()
    assert prospect.last_person_contact_at is not None
    assert retention.due(utcnow()) == []


def test_a_stop_does_not_restart_the_clock(world):
    prospect = person(world, "Stop", created_days_ago=0)
    replies.receive({"MessageSid": "SM8", "From": prospect.phone, "Body": "STOP"})
    db.session.expire_all()
    assert prospect.last_person_contact_at is None


def test_a_link_answer_and_a_consent_restart_the_clock(world, app):
    prospect = person(world, "Lien", created_days_ago=0)
    registration, _ = register(prospect, world["lab"], None)
    db.session.commit()
    token = sequences.personal_link(registration.id).rsplit("/", 1)[-1]
    state = personal_links.registration_for(token)
    assert state.valid
    personal_links.answer(state, "confirm")
    db.session.commit()
    assert prospect.last_person_contact_at is not None
    other = person(world, "Accord", created_days_ago=0)
    set_permission(other, "email", False, "manual", None)  # withdrawn by the team: no contact
    assert other.last_person_contact_at is None
    set_permission(other, "sms", True, "oral", None, from_person=True)
    assert other.last_person_contact_at is not None


def test_cli_and_job(world, app, monkeypatch):
    old = person(world, "Ancien", created_days_ago=4000 + 1200)  # before the real now
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["crm", "retention", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "1 personne(s) seraient anonymisées" in dry.output and f"{old.id}" in dry.output
    monkeypatch.setattr(workers.jobs, "worker_app", lambda: app)
    assert workers.jobs.run_retention() == 1
    db.session.expire_all()
    assert db.session.get(Prospect, old.id).erased_at is not None
    done = runner.invoke(args=["crm", "retention"])
    assert "0 personne(s) anonymisées" in done.output


def test_the_job_is_registered_daily_with_rq_cron(app_ctx):
    scheduler = CronScheduler(connection=get_redis())
    scheduler.load_config_from_file("workers/cron.py")
    jobs = {job.func_name: job for job in scheduler.get_jobs()}
    job = jobs["workers.jobs.run_retention"]
    assert job.cron == "0 3 * * *" and job.queue_name == "default"


def test_the_migration_gives_existing_people_their_last_contact(world):
    """Run the data protection migration's backfill on people recorded before it."""
    import importlib.util
    from pathlib import Path

    from crm.models import Consent, InboundMessage
    from crm.services.registrations import transition

    versions = Path(__file__).resolve().parents[2] / "migrations" / "versions"
    path = next(versions.glob("ac93b90e08af_*.py"))
    spec = importlib.util.spec_from_file_location("data_protection_migration", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)  # type: ignore[union-attr]
    replied, consented, came, silent = (person(world, n, 2000) for n in "ABCD")
    at = utcnow().replace(microsecond=0) - 40 * DAY
    db.session.add(
        InboundMessage(
            message_sid="SMold", from_number="+33600000000", prospect_id=replied.id, received_at=at
        )
    )
    db.session.add(
        Consent(
            prospect_id=consented.id,
            channel="sms",
            granted=True,
            from_person=True,
            method="oral",
            recorded_at=at - DAY,
        )
    )
    registration, _ = register(came, world["lab"], None)
    transition(registration, "confirmed", None)
    transition(registration, "attended", None)
    db.session.commit()
    db.session.execute(sa.text(migration.BACKFILL_LAST_CONTACT))
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Prospect, replied.id).last_person_contact_at == at
    assert db.session.get(Prospect, consented.id).last_person_contact_at == at - DAY
    assert db.session.get(Prospect, came.id).last_person_contact_at is not None
    assert db.session.get(Prospect, silent.id).last_person_contact_at is None
