"""`make token` (kinetic-stack token): a bearer token for a demo staff member."""

from __future__ import annotations

import subprocess
import sys
import uuid

import jwt

from kinetic_infra.auth.dev_issuer import key_path, save_staff
from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.auth.tokens import SigningKey


def run_token(data_dir, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kinetic_infra.stack.cli", "token", *args,
                           "--data-dir", str(data_dir)], capture_output=True, text=True,
                          timeout=60)


def test_the_token_command_mints_a_verifiable_token_for_a_demo_staff_member(tmp_path):
    tenant = uuid.uuid4()
    save_staff(tmp_path, [Principal("olivia.operator", "Olivia", tenant,
                                    frozenset({Role.OPERATOR}))])
    result = run_token(tmp_path, "olivia.operator")
    assert result.returncode == 0, result.stderr
    key = SigningKey.load_or_create(key_path(tmp_path))
    public = jwt.PyJWK({**key.jwks()["keys"][0]}).key
    claims = jwt.decode(result.stdout.strip(), public, algorithms=["RS256"], audience="kinetic",
                        issuer="http://127.0.0.1:8100")
    assert Principal.from_claims(claims).tenant_id == tenant
    assert claims["sub"] == "olivia.operator"


def test_the_token_command_names_the_demo_staff_when_asked_for_someone_else(tmp_path):
    save_staff(tmp_path, [Principal("olivia.operator", "Olivia", uuid.uuid4(),
                                    frozenset({Role.OPERATOR}))])
    result = run_token(tmp_path, "mallory")
    assert result.returncode == 2
    assert "olivia.operator" in result.stderr
