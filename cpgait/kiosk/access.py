"""Who may use the kiosk: a PIN set by the admin (stored as a scrypt hash), login sessions in HttpOnly SameSite
cookies, a CSRF token in every form, and the rule that serving beyond this machine needs a PIN.

Without a PIN (the default, localhost only) every browser on this machine is let in and still gets a session
cookie, so that forms carry a CSRF token all the same (a web page elsewhere cannot post to the kiosk). With a PIN,
a request without a valid session cookie is redirected to /login (pages) or answered 401 (streams, data, files).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from dataclasses import dataclass

from cpgait.errors import CpgaitError

PIN_SETTING = "admin_pin"
PIN_MIN, PIN_MAX = 6, 64
COOKIE = "cpgait_kiosk"
SESSION_TTL_S = 12 * 3600
MAX_FAILURES = 5  # wrong PINs in a row before logins pause
LOCKOUT_S = 60.0
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_pin(pin: str) -> str:
    """`scrypt$<salt hex>$<hash hex>` of a PIN of `PIN_MIN`..`PIN_MAX` characters."""
    if not PIN_MIN <= len(pin) <= PIN_MAX:
        raise CpgaitError(f"the PIN has {len(pin)} characters; expected {PIN_MIN} to {PIN_MAX}")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def pin_matches(stored: str, pin: str) -> bool:
    try:
        kind, salt, digest = stored.split("$")
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    probe = hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt), dklen=32, **_SCRYPT)
    return hmac.compare_digest(probe.hex(), digest)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, pin_set: bool) -> None:
    """Serving on the network without a PIN is refused."""
    if not is_loopback(host) and not pin_set:
        raise CpgaitError(
            f"--host {host}: serving beyond this machine needs a PIN; set one with `cpgait kiosk set-pin` "
            "(or bind to 127.0.0.1)"
        )


@dataclass
class _Login:
    expires: float
    csrf: str


class Access:
    """Login sessions in memory (a restart logs everyone out); `pin_hash` None = open on localhost."""

    def __init__(self, pin_hash: str | None) -> None:
        self.pin_hash = pin_hash
        self._logins: dict[str, _Login] = {}
        self._lock = threading.Lock()
        self._failures = 0
        self._locked_until = 0.0

    @property
    def needs_pin(self) -> bool:
        return self.pin_hash is not None

    def open_session(self) -> str:
        """A new login session's cookie value."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._logins = {k: v for k, v in self._logins.items() if v.expires > now}
            self._logins[token] = _Login(now + SESSION_TTL_S, secrets.token_urlsafe(32))
        return token

    def login(self, pin: str) -> str | None:
        """A session cookie value for the right PIN; None for a wrong one, or while logins pause after failures."""
        with self._lock:
            if time.monotonic() < self._locked_until:
                return None
        if self.pin_hash is None or not pin_matches(self.pin_hash, pin):
            with self._lock:
                self._failures += 1
                if self._failures >= MAX_FAILURES:
                    self._locked_until, self._failures = time.monotonic() + LOCKOUT_S, 0
            return None
        with self._lock:
            self._failures = 0
        return self.open_session()

    def csrf(self, token: str | None) -> str | None:
        """The CSRF token of a valid session cookie; None when the cookie is missing, unknown or expired."""
        if not token:
            return None
        with self._lock:
            login = self._logins.get(token)
            if login is None or login.expires < time.monotonic():
                return None
            return login.csrf

    def logout(self, token: str | None) -> None:
        with self._lock:
            self._logins.pop(token or "", None)
