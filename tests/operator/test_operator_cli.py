"""The operator starts whatever uid it runs as (Kubernetes runs images as arbitrary uids)."""

from __future__ import annotations

import getpass
import os
import socket

import pytest
from orderpipeline_operator.cli import peering_identity


def test_peering_identity_needs_no_passwd_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_user() -> str:
        raise KeyError("getpwuid(): uid not found: 10001")

    monkeypatch.setattr(getpass, "getuser", no_user)
    assert peering_identity() == f"{socket.gethostname()}/{os.getpid()}"
