"""The OpenAPI documents (docs/openapi.json, docs/agent-api.json) are valid OpenAPI
3.1, and the first is exactly what the running scheduler serves at /openapi.json."""

import json
from pathlib import Path

import requests
from openapi_spec_validator import validate

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_committed_documents_are_valid_openapi():
    for path in (COMMITTED, COMMITTED.parent / "agent-api.json"):
        document = json.loads(path.read_text())
        validate(document)
        assert document["openapi"].startswith("3.1"), path


def test_the_served_document_is_the_committed_one(cloud):
    served = requests.get(f"{cloud.base_url}/openapi.json", verify=str(cloud.cacert), timeout=30)
    assert served.status_code == 200
    assert served.json() == json.loads(COMMITTED.read_text())


def test_every_clause_of_the_standard_has_an_operation():
    """Each clause the conformance matrix lists is named by some operation's x-clauses."""
    document = json.loads(COMMITTED.read_text())
    named = {c for item in document["paths"].values() for op in item.values() for c in op.get("x-clauses", [])}
    matrix = (COMMITTED.parent / "conformance.md").read_text()
    clauses = {line.split("|")[1].strip() for line in matrix.splitlines() if line.startswith("| B.")}
    assert clauses, "docs/conformance.md lists no clauses"
    assert clauses <= named, sorted(clauses - named)
