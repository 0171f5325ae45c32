"""Runtime settings of the fleet app, read from the file Ansible writes.

The ``fleet_app`` role writes ``/etc/fleet/fleet.toml`` (mode 0640) on every producer and worker
host. Environment variables override single keys, which is how tests and local runs point the app
elsewhere without a file. No address or secret lives in this package.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG_FILE = "/etc/fleet/fleet.toml"
#: How an API token is stored: its SHA-256 digest (fleet.web.token_digest).
_TOKEN_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
#: Keys of the file's ``[tls]`` table (paths on the host).
_TLS_KEYS = ("ca_file", "cert_file", "key_file")


class SettingsError(ValueError):
    """The configuration file or environment is missing a key or holds a bad value."""


@dataclass(frozen=True)
class Settings:
    """Connection settings shared by the producer and the workers.

    Attributes:
        broker_urls: AMQP URLs, one per broker node, in failover order
            (``amqp://user:password@host:5672/vhost``).
        result_backend: Redis URL with password (``redis://:password@host:6379/0``, or
            ``rediss://`` over TLS), or ``;``-separated Redis Sentinel URLs
            (``sentinel://:password@host:26379/0;...``; the password is the servers', which the
            Sentinels share), for Celery's Sentinel backend.
        result_backend_master: The Sentinels' name for the master; required with
            ``sentinel://`` URLs, unused otherwise.
        result_backend_tls: Talk to the Sentinels and the master over TLS (``sentinel://``
            URLs; ``rediss://`` says so itself).
        role: ``"producer"`` or ``"worker"``; selects the settings that only one side wants
            (publisher confirms belong to producers, see ``fleet.celeryconfig``).
        broker_heartbeat: AMQP heartbeat in seconds.
        sentry_dsn: Sentry DSN to report errors to; empty (the default) sends nothing anywhere.
        drills: load the drill and poison tasks (:mod:`fleet.drill_tasks`); off by default, on
            where failover drills run (the lab).
        api_max_body_bytes: Largest request body the producer API reads, bytes (default 1 MiB);
            a larger one is answered 413 before it is read.
        api_max_json_depth: Deepest nesting of arrays and objects the API accepts in a body
            (default 32); a deeper one is answered 400 before it is parsed.
        api_tokens: Client name -> SHA-256 digest of its API token, ``"sha256:<64 hex>"``
            (:func:`fleet.web.token_digest`), from the file's ``[api_tokens]`` table. The producer
            refuses to start without one; workers ignore it.
        tls_ca_file: Path of the CA certificate (PEM) that server certificates must chain to,
            from the file's ``[tls]`` table; required when a URL is ``amqps://`` or ``rediss://``.
        tls_cert_file: Path of this host's client certificate (PEM), presented to the broker
            (``amqps://``) and Redis (``rediss://``), which both ask for one.
        tls_key_file: Path of that certificate's private key (PEM).
        extra: Any other keys of the file's ``[celery]`` table, passed to Celery unchanged.
    """

    broker_urls: tuple[str, ...]
    result_backend: str
    role: str = "producer"
    result_backend_master: str = ""
    result_backend_tls: bool = False
    broker_heartbeat: int = 10
    sentry_dsn: str = ""
    drills: bool = False
    api_max_body_bytes: int = 1024 * 1024
    api_max_json_depth: int = 32
    api_tokens: dict = field(default_factory=dict)
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        """A ``rediss://`` backend is a TLS one, whatever ``result_backend_tls`` says."""
        if self.result_backend.startswith("rediss://"):
            object.__setattr__(self, "result_backend_tls", True)


def load_settings(path: str | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read settings from a TOML file, then apply ``FLEET_*`` environment overrides.

    Args:
        path: File to read; defaults to ``$FLEET_CONFIG`` or ``/etc/fleet/fleet.toml``. A missing
            file is allowed when the environment supplies every required key.
        environ: Mapping to read overrides from (defaults to ``os.environ``). Keys:
            ``FLEET_BROKER_URLS`` (``;``-separated), ``FLEET_RESULT_BACKEND``, ``FLEET_ROLE``,
            ``FLEET_BROKER_HEARTBEAT`` (seconds), ``FLEET_SENTRY_DSN``.

    Returns:
        A frozen :class:`Settings`.

    Raises:
        SettingsError: a required key is missing, a value has the wrong type, or the file is not
            valid TOML.
    """
    env = os.environ if environ is None else environ
    file_path = Path(path or env.get("FLEET_CONFIG", DEFAULT_CONFIG_FILE))
    data: dict = {}
    if file_path.is_file():
        try:
            data = tomllib.loads(file_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{file_path}: not valid TOML: {exc}") from exc

    broker_urls = data.get("broker_urls", [])
    if "FLEET_BROKER_URLS" in env:
        broker_urls = [u for u in env["FLEET_BROKER_URLS"].split(";") if u]
    result_backend = env.get("FLEET_RESULT_BACKEND", data.get("result_backend", ""))
    role = env.get("FLEET_ROLE", data.get("role", "producer"))
    heartbeat = env.get("FLEET_BROKER_HEARTBEAT", data.get("broker_heartbeat", 10))
    sentry_dsn = env.get("FLEET_SENTRY_DSN", data.get("sentry_dsn", ""))
    drills = data.get("drills", False)
    api_max_body_bytes = data.get("api_max_body_bytes", Settings.api_max_body_bytes)
    api_max_json_depth = data.get("api_max_json_depth", Settings.api_max_json_depth)
    api_tokens = data.get("api_tokens", {})
    result_backend_master = data.get("result_backend_master", "")
    result_backend_tls = data.get("result_backend_tls", False)

    if not isinstance(broker_urls, list) or not broker_urls:
        raise SettingsError(f"broker_urls must be a non-empty list (file {file_path})")
    if not all(isinstance(u, str) and u.startswith(("amqp://", "amqps://", "memory://")) for u in broker_urls):
        raise SettingsError("every broker URL must start with amqp://, amqps:// or memory://")
    if not isinstance(result_backend, str) or not result_backend:
        raise SettingsError(f"result_backend must be set (file {file_path})")
    if not result_backend.startswith(("redis://", "rediss://", "sentinel://", "memory://", "cache+memory://")):
        raise SettingsError("result_backend must start with redis://, rediss:// or sentinel://")
    if result_backend.startswith("sentinel://") and not (
        isinstance(result_backend_master, str) and result_backend_master
    ):
        raise SettingsError("sentinel:// URLs need result_backend_master (the Sentinels' name for the master)")
    if not isinstance(result_backend_tls, bool):
        raise SettingsError(f"result_backend_tls must be true or false, not {result_backend_tls!r}")
    result_backend_tls = result_backend_tls or result_backend.startswith("rediss://")
    if role not in ("producer", "worker"):
        raise SettingsError(f"role must be 'producer' or 'worker', not {role!r}")
    if not isinstance(sentry_dsn, str) or (sentry_dsn and not sentry_dsn.startswith(("https://", "http://"))):
        raise SettingsError("sentry_dsn must be empty or an http(s):// DSN")
    if not isinstance(drills, bool):
        raise SettingsError(f"drills must be true or false, not {drills!r}")
    for key, value in (("api_max_body_bytes", api_max_body_bytes), ("api_max_json_depth", api_max_json_depth)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SettingsError(f"{key} must be a whole number of at least 1, not {value!r}")
    if not isinstance(api_tokens, dict) or not all(
        isinstance(v, str) and _TOKEN_DIGEST.fullmatch(v) for v in api_tokens.values()
    ):
        raise SettingsError('api_tokens must map each client name to "sha256:<64 hex digits>"')
    tls = data.get("tls", {})
    if not isinstance(tls, dict) or not all(isinstance(tls.get(k, ""), str) for k in _TLS_KEYS):
        raise SettingsError(f"the [tls] table must hold paths as strings: {', '.join(_TLS_KEYS)}")
    uses_tls = any(u.startswith("amqps://") for u in broker_urls) or result_backend_tls
    if uses_tls and not all(tls.get(k) for k in _TLS_KEYS):
        raise SettingsError(f"amqps://, rediss:// and result_backend_tls need the [tls] table's {', '.join(_TLS_KEYS)}")
    try:
        heartbeat = int(heartbeat)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"broker_heartbeat must be whole seconds, not {heartbeat!r}") from exc

    return Settings(
        broker_urls=tuple(broker_urls),
        result_backend=result_backend,
        role=role,
        result_backend_master=result_backend_master,
        result_backend_tls=result_backend_tls,
        broker_heartbeat=heartbeat,
        sentry_dsn=sentry_dsn,
        drills=drills,
        api_max_body_bytes=api_max_body_bytes,
        api_max_json_depth=api_max_json_depth,
        api_tokens=dict(api_tokens),
        tls_ca_file=tls.get("ca_file", ""),
        tls_cert_file=tls.get("cert_file", ""),
        tls_key_file=tls.get("key_file", ""),
        extra=dict(data.get("celery", {})),
    )
