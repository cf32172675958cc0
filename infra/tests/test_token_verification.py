"""Token verification against a live JWKS endpoint, including the issuer rotating its key."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.auth.tokens import InvalidTokenError, SigningKey, TokenVerifier

ISSUER, AUDIENCE = "https://issuer.test", "kinetic"


class JwksServer:
    """Serves whatever key set ``keys`` holds now, like an issuer mid-rotation."""

    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                body = json.dumps({"keys": [k for key in server.keys
                                            for k in key.jwks()["keys"]]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/jwks.json"


@pytest.fixture
def jwks():
    server = JwksServer()
    yield server
    server.http.shutdown()


def operator() -> Principal:
    return Principal("op", "Operator", uuid.uuid4(), frozenset({Role.OPERATOR}))


def test_a_rotated_key_is_accepted_without_a_restart(jwks, tmp_path: Path):
    old = SigningKey.load_or_create(tmp_path / "old.pem")
    new = SigningKey.load_or_create(tmp_path / "new.pem")
    jwks.keys = [old]
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks.url, refresh_cooldown=0)
    who = operator()
    assert verifier.verify(old.mint(who, issuer=ISSUER, audience=AUDIENCE)) == who

    jwks.keys = [new]  # the issuer rotates: a token names a key id the verifier has not seen
    assert verifier.verify(new.mint(who, issuer=ISSUER, audience=AUDIENCE)) == who
    unpublished = SigningKey.load_or_create(tmp_path / "never-published.pem")
    with pytest.raises(InvalidTokenError):
        verifier.verify(unpublished.mint(who, issuer=ISSUER, audience=AUDIENCE))


def test_tokens_for_another_issuer_or_past_expiry_are_refused(jwks, tmp_path: Path):
    key = SigningKey.load_or_create(tmp_path / "key.pem")
    jwks.keys = [key]
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks.url)
    with pytest.raises(InvalidTokenError):
        verifier.verify(key.mint(operator(), issuer="https://elsewhere.test", audience=AUDIENCE))
    with pytest.raises(InvalidTokenError):
        verifier.verify(key.mint(operator(), issuer=ISSUER, audience=AUDIENCE, ttl_seconds=-120))


def test_a_remembered_token_still_expires_on_time(jwks, tmp_path: Path):
    key = SigningKey.load_or_create(tmp_path / "key.pem")
    jwks.keys = [key]
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks.url)
    # Expired 28 s ago: still inside the 30 s allowed for clock skew, for two more seconds.
    token = key.mint(operator(), issuer=ISSUER, audience=AUDIENCE, ttl_seconds=-28)
    assert verifier.verify(token) == verifier.verified(token) is not None
    time.sleep(2.5)
    assert verifier.verified(token) is None
    with pytest.raises(InvalidTokenError):
        verifier.verify(token)


def test_only_the_very_token_verified_is_remembered(jwks, tmp_path: Path):
    key = SigningKey.load_or_create(tmp_path / "key.pem")
    jwks.keys = [key]
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks.url, remember_tokens=2)
    who = operator()
    tokens = [key.mint(who, issuer=ISSUER, audience=AUDIENCE, ttl_seconds=600 + n)
              for n in range(3)]
    for token in tokens:
        assert verifier.verify(token) == who
    # Bounded: the oldest of three is forgotten (and would be verified again).
    assert [verifier.verified(t) for t in tokens] == [None, who, who]
    header, claims, signature = tokens[2].split(".")
    forged = f"{header}.{claims}.{signature[:-4]}AAAA"
    assert verifier.verified(forged) is None
    with pytest.raises(InvalidTokenError):
        verifier.verify(forged)
