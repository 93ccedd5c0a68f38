"""A lab's workshop groups, for managers: form them, move people by hand, print, export.
The rules live in crm.services.workshop_groups."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.wrappers import Response as BaseResponse

from crm.extensions import db
from crm.forms.groups import GroupSizeForm, MakeGroupsForm, MoveForm
from crm.models import Lab
from crm.services import workshop_groups
from crm.services.workshop_groups import GroupError
from crm.views import redirect_to_section, roles_required

bp = Blueprint("groups", __name__, url_prefix="/labs/<int:lab_id>/groupes")

CHANGED_MEANWHILE = "Les groupes ont changé pendant l'opération : vérifiez-les et recommencez."


@bp.get("/")
@roles_required("manager", "admin")
def index(lab_id: int) -> str:
    lab = db.get_or_404(Lab, lab_id)
    return _render(lab, GroupSizeForm(data={"group_size": lab.group_size}))


@bp.post("/former")
@roles_required("manager", "admin")
def make(lab_id: int) -> BaseResponse:
    lab = db.get_or_404(Lab, lab_id)
    form = MakeGroupsForm()
    if form.validate_on_submit():
        try:
            warning = workshop_groups.make_groups(lab, current_user, replace=form.replace.data)
            db.session.commit()
        except GroupError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        except StaleDataError:
            db.session.rollback()
            flash(CHANGED_MEANWHILE, "error")
        else:
            flash("Groupes formés.", "success")
            if warning:
                flash(warning, "warning")
    return redirect(url_for(".index", lab_id=lab.id))


@bp.post("/deplacer")
@roles_required("manager", "admin")
def move(lab_id: int) -> BaseResponse:
    lab = db.get_or_404(Lab, lab_id)
    form = MoveForm()
    if not form.validate_on_submit():
        flash(" ".join(e for errors in form.errors.values() for e in errors), "error")
        return redirect(url_for(".index", lab_id=lab.id))
    try:
        registration = workshop_groups.move(
            lab, form.registration_id.data, form.group_no.data, current_user
        )
        db.session.commit()
    except GroupError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    except StaleDataError:
        db.session.rollback()
        flash(CHANGED_MEANWHILE, "error")
    else:
        flash(
            f"{registration.prospect.full_name} est dans le groupe {registration.group_no}.",
            "success",
        )
    return redirect_to_section(".index", f"groupe-{form.group_no.data}", lab_id=lab.id)


@bp.post("/taille")
@roles_required("manager", "admin")
def size(lab_id: int) -> tuple[str, int] | BaseResponse:
    lab = db.get_or_404(Lab, lab_id)
    form = GroupSizeForm()
    if form.validate_on_submit():
        try:
            workshop_groups.set_group_size(lab, form.group_size.data, current_user)
            db.session.commit()
        except GroupError as exc:
            db.session.rollback()
            form.group_size.errors = [*form.group_size.errors, str(exc)]
        else:
            flash(
                f"Taille cible : {lab.group_size} personnes. "
                "Elle s'applique à la prochaine formation des groupes.",
                "success",
            )
            return redirect(url_for(".index", lab_id=lab.id))
    return _render(lab, form), 400


@bp.get("/export.csv")
@roles_required("manager", "admin")
def export(lab_id: int) -> Response:
    lab = db.get_or_404(Lab, lab_id)
    body = "".join(workshop_groups.export(lab))  # a few dozen rows: no need to stream
    workshop_groups.record_export(lab, current_user)
    db.session.commit()
    filename = workshop_groups.export_filename(lab)
    return Response(
        body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _render(lab: Lab, size_form: GroupSizeForm) -> str:
    return render_template(
        "groups/index.html",
        lab=lab,
        page=workshop_groups.groups_for(lab),
        size_form=size_form,
        make_form=MakeGroupsForm(),
        move_form=MoveForm(),
    )
