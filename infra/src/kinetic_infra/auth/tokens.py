"""JWT verification (PyJWT) against an OIDC issuer's JWKS, and minting for the dev issuer.

Production: any OIDC issuer, configured by ``KINETIC_OIDC_ISSUER``, ``KINETIC_OIDC_AUDIENCE``
and ``KINETIC_OIDC_JWKS_URL``. PyJWT's ``PyJWKClient`` caches the key set and fetches it
again when a token names a key id it has not seen, which is how key rotation reaches us
without a restart. Only asymmetric algorithms are accepted (no "none", no HS256 with a
public key), and ``exp``, ``iat``, ``iss``, ``aud`` and ``sub`` are required.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kinetic_infra.auth.principal import Principal

ALGORITHMS = ["RS256", "ES256"]
LEEWAY_SECONDS = 30  # clock skew allowed between the issuer and us


class InvalidTokenError(Exception):
    """The token is missing, malformed, expired, forged or meant for someone else."""


@dataclass
class TokenVerifier:
    issuer: str
    audience: str
    jwks_url: str
    # An unknown key id triggers a refetch at most this often (a flood of made-up key ids
    # cannot hammer the issuer). Issuers publish a new key before signing with it, so a
    # rotation is seen well within this window.
    refresh_cooldown: float = 30.0
    # Tokens already verified, by their whole text (signature included, so no other token
    # can match one): a client sends the same token with every request for hours, and
    # checking its signature and claims again each time cost about a tenth of a booking's
    # CPU. An entry lasts until the token expires, or ``remember_seconds`` at most, so a
    # key the issuer withdraws stops working as soon as it would without the memory (the
    # key set itself is kept for five minutes).
    remember_seconds: float = 60.0
    remember_tokens: int = 4096

    def __post_init__(self) -> None:
        self._jwks = jwt.PyJWKClient(self.jwks_url, cache_keys=True, lifespan=300, timeout=5,
                                     cooldown_duration=self.refresh_cooldown)
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def verified(self, token: str) -> Principal | None:
        """The token's principal if it was verified recently and has not expired since;
        None otherwise (then ``verify`` it, which may fetch the issuer's key set)."""
        entry = self._verified.get(token)
        if entry is None:
            return None
        principal, until = entry
        if time.time() >= until:
            self._verified.pop(token, None)
            return None
        return principal

    def verify(self, token: str) -> Principal:
        if (known := self.verified(token)) is not None:
            return known
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token, key.key, algorithms=ALGORITHMS, audience=self.audience,
                issuer=self.issuer, options={"require": ["exp", "iat", "iss", "aud", "sub"]},
                leeway=LEEWAY_SECONDS,
            )
            principal = Principal.from_claims(claims)
        except (jwt.PyJWTError, KeyError, ValueError) as exc:
            raise InvalidTokenError(type(exc).__name__) from None
        self._remember(token, principal, float(claims["exp"]) + LEEWAY_SECONDS)
        return principal

    def _remember(self, token: str, principal: Principal, expires: float) -> None:
        self._verified[token] = (principal, min(expires, time.time() + self.remember_seconds))
        while len(self._verified) > self.remember_tokens:
            self._verified.popitem(last=False)  # the oldest entry


@dataclass
class SigningKey:
    """The development issuer's RSA key, kept in the data directory between runs."""

    private_pem: bytes
    kid: str

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        if not path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
            path.chmod(0o600)
        pem = path.read_bytes()
        public = serialization.load_pem_private_key(pem, None).public_key()
        der = public.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        import hashlib

        return cls(pem, hashlib.sha256(der).hexdigest()[:16])

    def jwks(self) -> dict:
        private = serialization.load_pem_private_key(self.private_pem, None)
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def mint(self, principal: Principal, *, issuer: str, audience: str,
             ttl_seconds: int = 8 * 3600) -> str:
        now = int(time.time())
        claims = {**principal.claims(), "iss": issuer, "aud": audience, "iat": now,
                  "exp": now + ttl_seconds}
        return jwt.encode(claims, self.private_pem, algorithm="RS256",
                          headers={"kid": self.kid})
