"""Console sessions: signed, expiring cookies backed by a server-side row the server can revoke.

Signing in with an API key makes a random 256-bit token. The cookie holds
`v1.<token>.<expires>.<signature>`, the signature an HMAC-SHA256 over the rest
with the console secret; the database holds only the token's SHA-256, with
the key's name and digest, the expiry and the session's CSRF token. A cookie
is believed when its signature checks (constant time, before any database
read), it has not expired, its row exists (sign-out deletes it, so a copied
cookie dies too) and its API key is still configured — with the role the
configuration gives that key now.

The secret is `[console] session_secret` when set. Otherwise one is made
once, stored in `console_secrets` and read by every API process, so replicas
and `serve --workers N` share sessions and restarts keep them without any
configuration. Changing the configured secret signs everyone out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schemas.tables import ConsoleSecretRow, ConsoleSessionRow
from service.api.auth import ApiKey, KeyRing

COOKIE = "hookyard_session"
"""The session cookie: HttpOnly, SameSite=Strict, path `/ui`, Secure over HTTPS."""
LOGIN_COOKIE = "hookyard_login"
"""The sign-in form's CSRF cookie (double submit): there is no session to hold a token yet."""
SECRET_NAME = "session"  # noqa: S105 - the row's name, not a secret
_VERSION = "v1"
_SIGNATURE_BYTES = 32


@dataclass(frozen=True)
class ConsoleSession:
    key_name: str
    role: str
    csrf_token: str
    expires_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class SessionStore:
    def __init__(self, engine: Engine, keys: KeyRing, configured_secret: str | None, hours: int) -> None:
        self._engine = engine
        self._keys = keys
        self._secret = None if configured_secret is None else configured_secret.encode()
        self._lifetime = timedelta(hours=hours)
        self._lock = threading.Lock()

    @property
    def lifetime(self) -> timedelta:
        return self._lifetime

    def secret(self) -> bytes:
        """The configured secret, or the one kept in the database (made by the first process that needs it)."""
        with self._lock:
            if self._secret is None:
                self._secret = self._stored_secret()
            return self._secret

    def _stored_secret(self) -> bytes:
        with Session(self._engine) as session:
            value = session.scalar(select(ConsoleSecretRow.value).where(ConsoleSecretRow.name == SECRET_NAME))
            if value is None:
                session.add(
                    ConsoleSecretRow(name=SECRET_NAME, value=secrets.token_hex(32), created_at=datetime.now(UTC))
                )
                try:
                    session.commit()
                except IntegrityError:  # another process made it first: use theirs
                    session.rollback()
                value = session.scalar(select(ConsoleSecretRow.value).where(ConsoleSecretRow.name == SECRET_NAME))
        if value is None:
            raise RuntimeError("console secret could not be stored")
        return value.encode()

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self.secret(), payload.encode(), hashlib.sha256).digest())

    def sign_in(self, presented_key: str) -> tuple[str, ConsoleSession] | None:
        """A new session for a configured API key: (cookie value, session); None for a wrong key."""
        key = self._keys.identify(presented_key)
        if key is None:
            return None
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        expires = now + self._lifetime
        session = ConsoleSession(key.name, key.role, secrets.token_urlsafe(32), expires)
        with Session(self._engine) as db, db.begin():
            db.add(
                ConsoleSessionRow(
                    token_sha256=_digest(token),
                    key_name=key.name,
                    key_sha256=key.digest.hex(),
                    role=key.role,
                    csrf_token=session.csrf_token,
                    created_at=now,
                    expires_at=expires,
                )
            )
        payload = f"{_VERSION}.{token}.{int(expires.timestamp())}"
        return f"{payload}.{self._sign(payload)}", session

    def _token(self, cookie: str, now: datetime) -> str | None:
        """The token of a cookie whose signature checks and which has not expired."""
        parts = cookie.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or not parts[2].isdigit() or len(cookie) > 256:
            return None
        payload = ".".join(parts[:3])
        try:
            given = _unb64(parts[3])
        except (binascii.Error, ValueError):
            return None
        expected = hmac.new(self.secret(), payload.encode(), hashlib.sha256).digest()
        if len(given) != _SIGNATURE_BYTES or not hmac.compare_digest(given, expected):
            return None
        if int(parts[2]) <= now.timestamp():
            return None
        return parts[1]

    def verify(self, cookie: str | None) -> ConsoleSession | None:
        """The live session a cookie names; None when it is missing, forged, expired, signed out or its key
        is no longer configured."""
        if not cookie:
            return None
        now = datetime.now(UTC)
        token = self._token(cookie, now)
        if token is None:
            return None
        with Session(self._engine) as db:
            row = db.get(ConsoleSessionRow, _digest(token))
            if row is None or row.expires_at <= now:
                return None
            key: ApiKey | None = self._keys.find(row.key_name, bytes.fromhex(row.key_sha256))
            if key is None:
                return None
            return ConsoleSession(key.name, key.role, row.csrf_token, row.expires_at)

    def sign_out(self, cookie: str | None) -> None:
        """End the session a cookie names (if it is one of ours), so no copy of the cookie works again."""
        if not cookie:
            return
        token = self._token(cookie, datetime.now(UTC))
        if token is None:
            return
        with Session(self._engine) as db, db.begin():
            db.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.token_sha256 == _digest(token)))


def same_token(given: str | None, expected: str) -> bool:
    """A CSRF check in constant time; a missing token never matches."""
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())
