"""The pod-template checksum: a digest of exactly the settings and Secret keys a worker uses."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from orderpipeline_operator.manifests.components import Component

# (secret name, key) -> the value's bytes; None when the Secret or the key is missing.
SecretValues = Mapping[tuple[str, str], bytes | None]


def component_checksum(
    component: Component, config: Mapping[str, str], secrets: SecretValues
) -> str:
    digest = hashlib.sha256()
    for key in sorted(component.config_keys):
        digest.update(f"c\0{key}\0{config.get(key, '')}\0".encode())
    refs = [*component.secret_keys, *([component.ca_secret] if component.ca_secret else [])]
    for ref in sorted(refs, key=lambda r: (r.env, r.secret, r.key)):
        value = secrets.get((ref.secret, ref.key))
        digest.update(f"s\0{ref.env}\0{ref.secret}\0{ref.key}\0".encode())
        # The value itself only enters the digest; it is never stored or logged.
        digest.update(b"<missing>" if value is None else hashlib.sha256(value).digest())
    return digest.hexdigest()


def secret_checksum(refs: list[tuple[str, str]], secrets: SecretValues) -> str:
    """A digest of some Secret keys' values, for a pod template annotation."""
    digest = hashlib.sha256()
    for name, key in sorted(refs):
        value = secrets.get((name, key))
        digest.update(f"{name}\0{key}\0".encode())
        digest.update(b"<missing>" if value is None else hashlib.sha256(value).digest())
    return digest.hexdigest()
