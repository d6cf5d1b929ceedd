"""``GET /api/v1/openapi.json`` (the document) and ``GET /api/docs`` (the reference page)."""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, url_for

from formloom.api_docs.document import build_document
from formloom.api_docs.reference import build_reference, page_text
from formloom.platform.db import get_session
from formloom.platform.web_auth import login_required
from formloom.runtime.i18n import current_locale
from formloom.runtime.labels import LOCALES

bp = Blueprint("api_docs", __name__)


def _document(locale: str) -> dict:
    return build_document(get_session(), g.user, locale=locale, page_max=current_app.config["API_PAGE_SIZE_MAX"],
                          server_url=request.host_url)


@bp.get("/api/v1/openapi.json")
@login_required
def openapi_document():
    """The document for the caller's apps; ``?locale=zh-CN`` for Chinese labels, ``?download=1`` as a file."""
    locale = request.args.get("locale")
    response = jsonify(_document(locale if locale in LOCALES else "en"))
    if request.args.get("download") in ("1", "true"):
        response.headers["Content-Disposition"] = 'attachment; filename="formloom-openapi.json"'
    return response


@bp.get("/api/docs")
def reference_page():
    # A page for people: without a session it sends them to log in (login_required answers JSON under /api/).
    if g.user is None:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    locale = current_locale()
    reference = build_reference(_document(locale), locale)
    return render_template("api_reference.html", reference=reference, text=page_text(locale), locale=locale)
