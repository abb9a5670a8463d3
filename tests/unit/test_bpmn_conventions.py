"""The exported BPMN follows the modelling conventions process people's tools check (e.g. bpmnlint's
``label-required``, ``no-implicit-split``, ``no-implicit-join`` and ``no-gateway-join-fork`` rules).

Checked on the committed ``docs/process.bpmn`` and on a freshly exported bigger table, by parsing the XML:

* every gateway is named;
* flows merge only at a gateway: no task or event has more than one incoming sequence flow;
* flows split only at a gateway: no task or event has more than one outgoing sequence flow, and conditional
  flows leave from gateways only;
* a gateway either splits or merges, never both.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from processdoc import to_bpmn
from tests.unit.test_export import GROWN

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "process.bpmn"
GATEWAYS = ("exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway")
ACTIVITIES = ("task", "userTask", "serviceTask", "manualTask", "scriptTask", "subProcess", "callActivity")
EVENTS = ("startEvent", "endEvent", "intermediateThrowEvent", "intermediateCatchEvent", "boundaryEvent")


def _exports() -> list[tuple[str, str]]:
    return [("docs/process.bpmn", COMMITTED.read_text(encoding="utf-8")), ("grown table", to_bpmn(GROWN))]


EXPORTS = pytest.mark.parametrize(("name", "xml"), _exports(), ids=["committed", "grown"])


def _process(xml: str) -> ET.Element:
    process = ET.fromstring(xml).find(f"{BPMN}process")
    assert process is not None
    return process


def _nodes(process: ET.Element, tags: tuple[str, ...]) -> dict[str, str]:
    """id -> tag of the process's flow nodes with these tags."""
    return {el.get("id", ""): tag for tag in tags for el in process.findall(f"{BPMN}{tag}")}


def _flows(process: ET.Element) -> list[ET.Element]:
    return process.findall(f"{BPMN}sequenceFlow")


@EXPORTS
def test_every_gateway_is_named(name: str, xml: str) -> None:
    process = _process(xml)
    gateways = [el for tag in GATEWAYS for el in process.findall(f"{BPMN}{tag}")]
    assert gateways, f"{name}: there are gateways to check"
    unnamed = [g.get("id") for g in gateways if not (g.get("name") or "").strip()]
    assert not unnamed, f"{name}: unnamed gateways {unnamed}"


@EXPORTS
def test_flows_merge_only_at_gateways(name: str, xml: str) -> None:
    process = _process(xml)
    incoming = Counter(f.get("targetRef") for f in _flows(process))
    for node_id, tag in _nodes(process, ACTIVITIES + EVENTS).items():
        assert incoming[node_id] <= 1, f"{name}: {tag} {node_id} joins {incoming[node_id]} flows without a gateway"
    merging = [g for g in _nodes(process, GATEWAYS) if incoming[g] > 1]
    assert merging, f"{name}: the joins the table has are drawn as merging gateways"


@EXPORTS
def test_flows_split_only_at_gateways(name: str, xml: str) -> None:
    process = _process(xml)
    gateways = _nodes(process, GATEWAYS)
    outgoing = Counter(f.get("sourceRef") for f in _flows(process))
    for node_id, tag in _nodes(process, ACTIVITIES + EVENTS).items():
        assert outgoing[node_id] <= 1, f"{name}: {tag} {node_id} splits into {outgoing[node_id]} flows"
    for flow in _flows(process):
        if flow.find(f"{BPMN}conditionExpression") is not None:
            assert flow.get("sourceRef") in gateways, f"{name}: conditional flow {flow.get('id')} leaves a non-gateway"


@EXPORTS
def test_a_gateway_either_splits_or_merges(name: str, xml: str) -> None:
    process = _process(xml)
    incoming = Counter(f.get("targetRef") for f in _flows(process))
    outgoing = Counter(f.get("sourceRef") for f in _flows(process))
    for gateway in _nodes(process, GATEWAYS):
        assert incoming[gateway] >= 1 and outgoing[gateway] >= 1, f"{name}: {gateway} is not connected"
        assert incoming[gateway] == 1 or outgoing[gateway] == 1, f"{name}: {gateway} both merges and splits"


@EXPORTS
def test_incoming_and_outgoing_references_match_the_flows(name: str, xml: str) -> None:
    process = _process(xml)
    flows = {f.get("id"): (f.get("sourceRef"), f.get("targetRef")) for f in _flows(process)}
    for node_id in _nodes(process, GATEWAYS + ACTIVITIES + EVENTS):
        node = next(el for el in process.iter() if el.get("id") == node_id)
        ins = {el.text for el in node.findall(f"{BPMN}incoming")}
        outs = {el.text for el in node.findall(f"{BPMN}outgoing")}
        assert ins == {f for f, (_, target) in flows.items() if target == node_id}, f"{name}: {node_id} incoming"
        assert outs == {f for f, (source, _) in flows.items() if source == node_id}, f"{name}: {node_id} outgoing"


def test_the_checks_catch_an_implicit_join_and_an_unnamed_gateway() -> None:
    """The checks above can fail: a model with the old faults (unnamed choice, flows joining at a task)."""
    xml = f"""<definitions xmlns="{BPMN[1:-1]}"><process id="p">
      <startEvent id="s"/><userTask id="a"/><exclusiveGateway id="g"/><userTask id="b"/>
      <sequenceFlow id="f1" sourceRef="s" targetRef="a"/><sequenceFlow id="f2" sourceRef="a" targetRef="g"/>
      <sequenceFlow id="f3" sourceRef="g" targetRef="b"/><sequenceFlow id="f4" sourceRef="g" targetRef="a"/>
    </process></definitions>"""
    with pytest.raises(AssertionError, match="unnamed gateways"):
        test_every_gateway_is_named("bad", xml)
    with pytest.raises(AssertionError, match="joins 2 flows"):
        test_flows_merge_only_at_gateways("bad", xml)
