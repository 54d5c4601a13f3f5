"""The ViewDefinition engine beyond the conformance suite: validation and functions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from hospital.errors import FhirError
from hospital.fhir.fhirpath import date_boundary, decimal_boundary, reference_key
from hospital.fhir.viewdef import compile_view, evaluate

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [{"family": "A", "given": ["x", "y"]}, {"family": "B"}],
    "managingOrganization": {"reference": "Organization/o1"},
}


def _view(**select: Any) -> dict[str, Any]:
    return {"resource": "Patient", "select": [select]}


@pytest.mark.parametrize(
    "definition",
    [
        None,
        [],
        {},
        {"resource": "Patient"},
        {"resource": "Patient", "select": []},
        {"resource": 3, "select": [{"column": [{"name": "id", "path": "id"}]}]},
        _view(column=[{"name": "id"}]),
        _view(column=[{"name": "1bad", "path": "id"}]),
        _view(column=[{"name": "id", "path": "id"}, {"name": "id", "path": "id"}]),
        _view(column=[{"name": "id", "path": "id", "collection": "yes"}]),
        _view(forEach="name", forEachOrNull="name", column=[{"name": "f", "path": "family"}]),
        _view(forEach="@@", column=[{"name": "f", "path": "family"}]),
        _view(column="id"),
        _view(repeat="item", column=[{"name": "f", "path": "family"}]),
        _view(column=[{"name": "f", "path": "name.where(use = %nope).family"}]),
        {**_view(column=[{"name": "id", "path": "id"}]), "constant": [{"name": "c"}]},
        {**_view(column=[{"name": "id", "path": "id"}]), "where": [{"path": 1}]},
    ],
)
def test_invalid_view_definitions_raise_fhir_error(definition: Any) -> None:
    with pytest.raises(FhirError):
        compile_view(definition)


def test_multiple_values_without_collection_is_an_error() -> None:
    view = compile_view(_view(column=[{"name": "f", "path": "name.family"}]))
    with pytest.raises(FhirError, match="collection"):
        view.rows(PATIENT)


def test_non_boolean_where_is_an_error() -> None:
    view = compile_view(
        {**_view(column=[{"name": "id", "path": "id"}]), "where": [{"path": "name.family"}]}
    )
    with pytest.raises(FhirError, match="boolean"):
        view.rows(PATIENT)


def test_for_each_row_index_and_reference_keys() -> None:
    rows = evaluate(
        {
            "resource": "Patient",
            "select": [
                {
                    "column": [
                        {"name": "id", "path": "getResourceKey()"},
                        {
                            "name": "org",
                            "path": "managingOrganization.getReferenceKey(Organization)",
                        },
                    ]
                },
                {
                    "forEach": "name",
                    "column": [
                        {"name": "i", "path": "%rowIndex", "type": "integer"},
                        {"name": "family", "path": "family"},
                        {"name": "given", "path": "given.join(' ')"},
                    ],
                },
            ],
        },
        [PATIENT, {"resourceType": "Observation", "id": "o"}],
    )
    assert rows == [
        {"id": "p1", "org": "o1", "i": 0, "family": "A", "given": "x y"},
        {"id": "p1", "org": "o1", "i": 1, "family": "B", "given": ""},
    ]


def test_boundaries() -> None:
    assert decimal_boundary(Decimal("1.0"), high=False) == Decimal("0.95")
    assert decimal_boundary(Decimal("2"), high=True) == Decimal("2.5")
    assert date_boundary("2024-02", "date", high=True) == "2024-02-29"
    assert date_boundary("2024", "date", high=False) == "2024-01-01"
    assert date_boundary("2010-10-10T10:00+02:00", "dateTime", high=True) == (
        "2010-10-10T10:00:59.999+02:00"
    )
    assert date_boundary("12", "time", high=False) == "12:00:00.000"
    assert date_boundary("not a date", "date", high=False) is None


@pytest.mark.parametrize(
    ("reference", "type_name", "key"),
    [
        ("Patient/p1", None, "p1"),
        ("Patient/p1", "Patient", "p1"),
        ("Patient/p1", "Observation", None),
        ("http://x.org/fhir/Patient/p1/_history/2", None, "p1"),
        ("#contained", None, None),
        ("urn:uuid:1234", None, None),
    ],
)
def test_reference_key(reference: str, type_name: str | None, key: str | None) -> None:
    assert reference_key(reference, type_name) == key
