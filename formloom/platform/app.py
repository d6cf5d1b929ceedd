"""The application factory."""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from formloom.platform import config, db, idempotency
from formloom.platform.errors import FormloomError

csrf = CSRFProtect()
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def create_app(test_config: dict | None = None) -> Flask:
    """Create the Formloom app: settings, database, auth, and the runtime and builder parts."""
    instance_path = (test_config or {}).get("INSTANCE_PATH") or config.instance_path_from_env()
    app = Flask("formloom", instance_path=str(Path(instance_path or Path.cwd() / "instance").resolve()),
                instance_relative_config=True,
                template_folder=str(Path(__file__).parent / "templates"),
                static_folder=str(Path(__file__).parent / "static"))
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app.config.update(config.load_settings(instance, dict(os.environ)))
    if test_config:
        app.config.update(test_config)
    app.config.setdefault("SECRET_KEY", None)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = config.ensure_secret_key(instance)
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = config.sqlite_url(instance)

    if app.config.get("TRUSTED_PROXIES"):
        # The client's address (login throttling, the audit) and whether it came over HTTPS
        # (Secure cookies, HSTS) come from the proxies' X-Forwarded-* headers, and only from them.
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    db.init_app(app)
    csrf.init_app(app)
    _register_parts(app)
    _register_errors(app)
    app.before_request(_protect_csrf)
    idempotency.init_app(app)  # after identity and CSRF: a key is claimed only for a checked request
    app.after_request(_security_headers)
    return app


def _register_parts(app: Flask) -> None:
    from formloom.api_docs import views as api_docs
    from formloom.builder import api as builder_api
    from formloom.builder import bundles_api
    from formloom.builder import views as builder_views
    from formloom.platform import account_views, audit_views, members_api, members_views, web_auth
    from formloom.runtime import api as runtime_api
    from formloom.runtime import (
        automation_api,
        automation_views,
        dashboards_views,
        files_views,
        i18n,
        imports_api,
        imports_views,
        incentives_views,
        pipelines_api,
        pipelines_views,
        views,
    )
    from formloom.templates_library import views as templates_views

    web_auth.init_app(app)
    i18n.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(runtime_api.bp)
    app.register_blueprint(builder_api.bp)
    app.register_blueprint(builder_views.bp)
    app.register_blueprint(bundles_api.bp)
    app.register_blueprint(files_views.bp)
    app.register_blueprint(pipelines_api.bp)
    app.register_blueprint(pipelines_views.bp)
    app.register_blueprint(automation_api.bp)
    app.register_blueprint(automation_views.bp)
    app.register_blueprint(api_docs.bp)
    app.register_blueprint(account_views.bp)
    app.register_blueprint(account_views.api)
    app.register_blueprint(audit_views.bp)
    app.register_blueprint(audit_views.api)
    app.register_blueprint(members_views.bp)
    app.register_blueprint(members_api.bp)
    app.register_blueprint(imports_api.bp)
    app.register_blueprint(imports_views.bp)
    from formloom.runtime import pool_views
    app.register_blueprint(pool_views.bp)
    app.register_blueprint(templates_views.bp)
    app.register_blueprint(incentives_views.bp)
    app.register_blueprint(incentives_views.api)
    app.register_blueprint(dashboards_views.bp)
    app.register_blueprint(dashboards_views.api)


def _protect_csrf() -> None:
    """CSRF on every cookie-authenticated request, JSON included; Bearer requests are exempt."""
    if request.headers.get("Authorization", "").startswith("Bearer "):
        return
    csrf.protect()


def _security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    hsts = current_app.config.get("HSTS_SECONDS")
    if request.is_secure and hsts:  # browsers ignore the header over plain http anyway
        response.headers.setdefault("Strict-Transport-Security", f"max-age={int(hsts)}")
    return response


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_body(code: str, message: str, fields: dict | None = None, **extra) -> dict:
    error = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    error.update(extra)
    return {"error": error}


def _register_errors(app: Flask) -> None:
    @app.errorhandler(FormloomError)
    def formloom_error(exc: FormloomError):
        if wants_json():
            return jsonify(error_body(exc.code, exc.message, exc.field_messages(), **exc.extra())), exc.http_status
        return render_template("error.html", status=exc.http_status, message=exc.message), exc.http_status

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        message = "The form has expired or did not come from this site; reload the page and try again."
        if wants_json():
            return jsonify(error_body("csrf_failed", message + " (Send the X-CSRFToken header, "
                                                               "or use a Bearer token.)")), 400
        return render_template("error.html", status=400, message=message), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if wants_json():
            code = (exc.name or "error").lower().replace(" ", "_")
            return jsonify(error_body(code, exc.description or exc.name)), exc.code
        return render_template("error.html", status=exc.code, message=exc.description), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("Unexpected error")
        message = "Something went wrong on our side; the error has been logged."
        if wants_json():
            return jsonify(error_body("internal_error", message)), 500
        return render_template("error.html", status=500, message=message), 500
