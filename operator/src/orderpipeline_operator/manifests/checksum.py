"""The pod-template checksum: a digest of exactly the settings and Secret keys a worker uses."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from orderpipeline_operator.manifests.components import Component

# (secret name, key) -> the value's fingerprint; None when the Secret or the key is missing.
SecretFingerprints = Mapping[tuple[str, str], bytes | None]


def fingerprint(secret_uid: str, value: bytes) -> bytes:
    """An HMAC of a credential keyed by its Secret's uid, for checksum annotations.

    A plain hash of the value would let anyone who can read Deployments guess a weak
    password offline; the uid is only readable by those who may read the Secret, which
    holds the value anyway. A Secret deleted and re-created gets a new uid: its pods roll.
    """
    return hmac.new(secret_uid.encode(), value, hashlib.sha256).digest()


def component_checksum(
    component: Component, config: Mapping[str, str], fingerprints: SecretFingerprints
) -> str:
    digest = hashlib.sha256()
    for key in sorted(component.config_keys):
        digest.update(f"c\0{key}\0{config.get(key, '')}\0".encode())
    refs = [*component.secret_keys, *([component.ca_secret] if component.ca_secret else [])]
    for ref in sorted(refs, key=lambda r: (r.env, r.secret, r.key)):
        value = fingerprints.get((ref.secret, ref.key))
        digest.update(f"s\0{ref.env}\0{ref.secret}\0{ref.key}\0".encode())
        digest.update(b"<missing>" if value is None else value)
    return digest.hexdigest()


def secret_checksum(refs: list[tuple[str, str]], fingerprints: SecretFingerprints) -> str:
    """A digest of some Secret keys' fingerprints, for a pod template annotation."""
    digest = hashlib.sha256()
    for name, key in sorted(refs):
        value = fingerprints.get((name, key))
        digest.update(f"{name}\0{key}\0".encode())
        digest.update(b"<missing>" if value is None else value)
    return digest.hexdigest()
