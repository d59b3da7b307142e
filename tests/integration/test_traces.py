"""A traced apply: the agent and the plugins it spawns export over OTLP/HTTP to a receiver this test
runs on a loopback port; the spans, assembled, are one trace whose parent links reach into the plugins.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.integration.conftest import MakeAgent
from tests.integration.harness import network_forma

pytestmark = pytest.mark.timeout(120)

TRACED = '''
"""traced: a plugin whose author makes a span of their own inside each create."""

from opentelemetry import trace

from formae.plugin import Operation, ProgressResult, ResourcePlugin, ResourceSchema, run


class Traced(ResourcePlugin):
    name = "traced"
    namespace = "Traced"
    version = "1.0.0"

    def schemas(self):
        return [ResourceSchema("Traced::Thing", identifier="Name")]

    async def create(self, request):
        with trace.get_tracer("traced-plugin").start_as_current_span("author's own work"):
            name = request.properties["Name"]
        return ProgressResult.success(Operation.CREATE, name, dict(request.properties))

    async def read(self, request):
        return ProgressResult.success(Operation.READ, request.native_id, {})

    async def update(self, request):
        return ProgressResult.success(Operation.UPDATE, request.native_id, dict(request.desired_properties))

    async def delete(self, request):
        return ProgressResult.success(Operation.DELETE, request.native_id)


run(Traced())
'''


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


class Receiver:
    """An OTLP/HTTP trace receiver: every span of every export, with its service's name."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.take(self.path, body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def take(self, path: str, body: bytes) -> None:
        assert path == "/v1/traces", path
        request = ExportTraceServiceRequest.FromString(body)
        with self._lock:
            for resource in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource.resource.attributes}
                for scope in resource.scope_spans:
                    self.spans.extend(_span(attributes["service.name"], s) for s in scope.spans)


def _span(service: str, span: Any) -> Span:
    attributes = {a.key: a.value.string_value or a.value.bool_value for a in span.attributes}
    return Span(
        service, span.name, span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(), attributes
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    thread = threading.Thread(target=running.server.serve_forever, daemon=True)
    thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()


def install_traced(home: Path) -> None:
    path = home / "plugins" / "traced" / "v1.0.0" / "traced-plugin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n{TRACED}", encoding="utf-8")
    path.chmod(0o755)


def traced_forma() -> dict[str, Any]:
    forma = network_forma()
    forma["resources"][2]["properties"]["FakeInProgressPolls"] = 1  # the bucket is polled once
    forma["targets"].append({"label": "here", "namespace": "Traced", "config": {}})
    forma["resources"].append(
        {
            "label": "thing",
            "type": "Traced::Thing",
            "stack": "net",
            "target": "here",
            "properties": {"Name": "t"},
        }
    )
    return forma


def test_a_traced_apply_is_one_trace_with_the_plugins_spans_inside(
    agent_home: Path, make_agent: MakeAgent, receiver: Receiver
) -> None:
    install_traced(agent_home)
    env = {
        "FORMAE_TRACING": "on",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    agent = make_agent(agent_home, env=env).start()
    agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=15)
    agent.wait_for_log(r"Plugin registered namespace=Traced node=\S+", timeout=15)

    command = agent.apply_and_wait(traced_forma())
    assert command["state"] == "Success", command
    assert agent.stop() == 0  # the agent and its plugins export what they still hold as they stop

    spans = list(receiver.spans)
    by_id = {span.span_id: span for span in spans}
    [root] = [span for span in spans if not span.parent_id]
    assert (root.service, root.name, root.attributes["formae.command_id"]) == (
        "formae-agent",
        "apply",
        command["id"],
    )
    assert {span.trace_id for span in spans} == {root.trace_id}, "every span is in the command's one trace"
    assert all(span.parent_id in by_id for span in spans if span is not root), "no span's parent is missing"

    names = {(span.service, span.name) for span in spans}
    assert ("formae-agent", "plan") in names
    for label in ("FakeAWS::EC2::VPC", "FakeAWS::EC2::Subnet", "FakeAWS::S3::Bucket", "Traced::Thing"):
        assert ("formae-agent", f"create {label}") in names
    assert ("formae-agent", "plugin status") in names
    assert ("formae-agent", "datastore commit") in names

    served = [span for span in spans if span.name.startswith("plugin serves ")]
    assert {span.service for span in served} == {"formae-plugin-fake-aws", "formae-plugin-traced"}
    assert len(served) == 5  # four creates and the bucket's poll
    for span in served:
        call = by_id[span.parent_id]
        assert (call.service, call.name) == ("formae-agent", f"plugin {span.attributes['formae.operation']}")
        assert by_id[call.parent_id].name.endswith(span.attributes["formae.resource_type"])
    [author] = [span for span in spans if span.name == "author's own work"]
    assert author.service == "formae-plugin-traced"
    assert by_id[author.parent_id].name == "plugin serves create Traced::Thing"
