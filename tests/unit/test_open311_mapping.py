"""Open311's pure parts: attribute[...] parameters, the XML shape of nested lists, services from categories."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from channels import open311
from config.reference import load_reference


def test_attributes_are_read_from_bracketed_parameters() -> None:
    form = [
        ("attribute[district]", "บางรัก"),
        ("attribute[tags][]", "a"),
        ("attribute[tags][]", "b"),
        ("attribute[bad key]", "x"),
        ("description", "not an attribute"),
    ]
    assert open311.attributes_of(form) == {"district": "บางรัก", "tags": "a,b"}


def test_xml_names_list_items_as_the_spec_does() -> None:
    value = {"service_code": "x", "attributes": [{"code": "a", "variable": True, "values": [{"key": "1"}]}]}
    root = ET.fromstring(open311.to_xml("service_definition", value))
    assert root.findtext("attributes/attribute/code") == "a"
    assert root.findtext("attributes/attribute/variable") == "true"
    assert root.findtext("attributes/attribute/values/value/key") == "1"
    errors = ET.fromstring(open311.to_xml("errors", [{"code": 404, "description": "ไม่พบ"}]))
    assert errors.findtext("error/code") == "404" and errors.findtext("error/description") == "ไม่พบ"
    empty = ET.fromstring(open311.to_xml("service_requests", [{"token": None}]))
    assert empty.findtext("request/token") == ""  # an empty element, as the spec shows absent values


def test_every_category_is_a_service_with_a_definition() -> None:
    reference = load_reference()
    services = open311.services(reference, "en")
    assert len(services) == len(reference.categories)
    assert all(s["type"] == "realtime" and s["service_name"] for s in services)
    for category in reference.categories.values():
        codes = [a["code"] for a in open311.service_definition(category, reference, "th")["attributes"]]
        assert codes[0] == "province" and len(codes) == len(set(codes))
