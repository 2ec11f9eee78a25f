"""Hypothesis strategies for invalid OrderPipeline specs, derived from the CRD's own schema
(crds/orderpipelines.yaml): pick one field, break one of its constraints."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

CRD = Path(__file__).resolve().parents[2] / "crds" / "orderpipelines.yaml"
Schema = dict[str, Any]


def spec_schema() -> Schema:
    crd = yaml.safe_load(CRD.read_text())
    schema: Schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec: Schema = schema["properties"]["spec"]
    return spec


def valid_spec(secret: str) -> dict[str, Any]:
    return {
        "kafka": {"bootstrapServers": "kafka:9092"},
        "couchbase": {
            "connectionString": "couchbase://couchbase",
            "credentialsSecretRef": {"name": secret},
        },
    }


def fields(schema: Schema, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Schema]]:
    """Every (path, schema) below `schema`, objects included."""
    out = [(path, schema)] if path else []
    for name, sub in (schema.get("properties") or {}).items():
        out += fields(sub, (*path, name))
    return out


def _violations(schema: Schema) -> list[Any]:
    """Values that break one constraint of `schema` (empty when none can be named)."""
    bad: list[Any] = []
    kind = schema.get("type")
    int_or_string = schema.get("x-kubernetes-int-or-string")
    if kind == "string" and not int_or_string:
        bad.append(12345)
    if kind in ("integer", "number"):
        bad.append("twelve")
    if kind == "boolean":
        bad.append("yes")
    if kind == "object":
        bad.append("not-an-object")
    if kind == "array":
        bad.append({"not": "a list"})
    if "enum" in schema:
        bad.append("NOT_IN_ENUM")
    if "minimum" in schema:
        bad.append(schema["minimum"] - 1)
    if "maximum" in schema:
        bad.append(schema["maximum"] + 1)
    if schema.get("minLength", 0) >= 1:
        bad.append("")
    if "maxLength" in schema:
        bad.append("a" * (schema["maxLength"] + 1))
    if "pattern" in schema:
        for candidate in ("has space!", "-leading", "\u00e9\u00e8", "a/b"):
            if not re.search(schema["pattern"], candidate):
                bad.append(candidate)
                break
    if "maxItems" in schema:
        bad.append([f"item-{i}" for i in range(schema["maxItems"] + 1)])
    for rule in schema.get("x-kubernetes-validations") or []:
        if "bootstrapServers" in rule.get("message", "") or "host:port" in rule.get("message", ""):
            bad += ["kafka", "kafka:port", "http://kafka:9092"]
        if "couchbase://" in rule.get("message", ""):
            bad += ["http://couchbase", "couchbase:/x"]
    return bad


def _set(spec: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = spec
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value


def _required_paths(schema: Schema, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [(*path, name) for name in schema.get("required") or []]
    for name, sub in (schema.get("properties") or {}).items():
        out += _required_paths(sub, (*path, name))
    return out


@st.composite
def invalid_spec(draw: st.DrawFn, secret: str) -> tuple[str, str, dict[str, Any]]:
    """(what was broken, a word the API server's refusal must contain, spec).

    Every spec breaks a rule the CRD states, so the API server must refuse each one."""
    schema = spec_schema()
    spec = valid_spec(secret)
    choice = draw(st.sampled_from(["field", "field", "field", "required", "rule"]))
    if choice == "required":
        # Only requirements whose parent the valid spec has: those are certain to apply.
        paths = [
            p
            for p in _required_paths(schema)
            if p[:-1] in ((), ("kafka",), ("couchbase",), ("couchbase", "credentialsSecretRef"))
        ]
        path = draw(st.sampled_from(paths))
        node = spec
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1], None)
        return f"missing {'.'.join(path)}", path[-1], spec
    if choice == "rule":
        broken = draw(
            st.sampled_from(
                [
                    ("SASL without credentials", ("kafka", "securityProtocol"), "SASL_SSL"),
                    ("CA with PLAINTEXT", ("kafka", "caSecretRef"), {"name": "ca"}),
                    (
                        "duplicate topics",
                        ("kafka", "topics"),
                        {
                            "orders": "same",
                            "fraudAlerts": "same",
                            "payments": "p",
                            "analytics": "a",
                            "deadLetter": "d",
                        },
                    ),
                ]
            )
        )
        _set(spec, broken[1], copy.deepcopy(broken[2]))
        return broken[0], broken[1][0], spec
    candidates = [(p, s) for p, s in fields(schema) if _violations(s)]
    path, sub = draw(st.sampled_from(candidates))
    value = draw(st.sampled_from(_violations(sub)))
    _set(spec, path, value)
    return f"{'.'.join(path)} = {str(value)[:40]!r}", path[-1], spec
