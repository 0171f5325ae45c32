"""Optional error reporting (Sentry, only when a DSN is configured), and error descriptions.

With ``sentry_dsn`` empty (the default in inventory: ``fleet_app_sentry_dsn``) the SDK is not even
imported and nothing is sent anywhere. With a DSN, unhandled errors of Flask requests and Celery
tasks are reported, tagged with the correlation id.
"""

from __future__ import annotations

from fleet import correlation
from fleet.settings import Settings


def init_error_reporting(settings: Settings, component: str) -> bool:
    """Start the Sentry SDK when ``settings.sentry_dsn`` is set.

    Args:
        settings: The app's settings; only ``sentry_dsn`` is read.
        component: ``"producer"`` or ``"worker"``, sent as the ``server_name`` prefix.

    Returns:
        True when reporting was switched on, False when no DSN is set (nothing imported).

    Raises:
        ImportError: a DSN is set but ``sentry-sdk`` is not installed.
    """
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.flask import FlaskIntegration

    def tag_request_id(event, _hint):
        event.setdefault("tags", {})["request_id"] = correlation.current() or "-"
        return event

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        integrations=[CeleryIntegration(), FlaskIntegration()],
        before_send=tag_request_id,
        server_name=f"{component}",
        send_default_pii=False,
    )
    return True


def describe_error(exc: BaseException) -> str:
    """``"Type: message"`` of a publish error, with the error it wraps (kombu re-raises a
    broker's nack, whose message is empty, as ``OperationalError``): e.g.
    ``"OperationalError (MessageNacked)"``."""
    text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    cause = exc.__cause__ or exc.__context__
    if cause is not None:
        text += f" ({type(cause).__name__}{': ' + str(cause) if str(cause) else ''})"
    return text
