"""The conformance suite's fixture resources, prompts, completions, subscriptions and the
SSE event store (`bosun mcp serve --conformance-fixtures`; tools are in `fixtures.py`).

Ported from the MCP Python SDK's conformance server (`examples/servers/everything-server`,
MIT License, Copyright (c) 2024 Anthropic, PBC); the subscription set and the event store
belong to one server instance here, never to the module.
"""

from __future__ import annotations

import base64
import json
import logging

from mcp.server import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.types import (
    Completion,
    CompletionArgument,
    CompletionContext,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    EmbeddedResource,
    EmptyResult,
    ImageContent,
    InputRequiredResult,
    JSONRPCMessage,
    PromptReference,
    ResourceTemplateReference,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    TextResourceContents,
    UnsubscribeRequestParams,
)

from bosun.server.mcp_serve.fixtures import TEST_IMAGE_BASE64

logger = logging.getLogger(__name__)

StreamId = str
EventId = str
watched_resource_content = "Watched resource content"


class InMemoryEventStore(EventStore):
    """Simple in-memory event store for SSE resumability testing."""

    def __init__(self) -> None:
        self._events: list[tuple[StreamId, EventId, JSONRPCMessage | None]] = []
        self._event_id_counter = 0

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        """Store an event and return its ID."""
        self._event_id_counter += 1
        event_id = str(self._event_id_counter)
        self._events.append((stream_id, event_id, message))
        return event_id

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        """Replay events after the specified ID."""
        target_stream_id = None
        for stream_id, event_id, _ in self._events:
            if event_id == last_event_id:
                target_stream_id = stream_id
                break
        if target_stream_id is None:
            return None
        last_event_id_int = int(last_event_id)
        for stream_id, event_id, message in self._events:
            # Priming events (None message) are skipped.
            if stream_id == target_stream_id and int(event_id) > last_event_id_int and message:
                await send_callback(EventMessage(message, event_id))
        return target_stream_id


def install_fixture_content(mcp: MCPServer) -> None:
    """Register the fixture resources, prompts, completion and the logging and subscription
    handlers on `mcp`."""
    resource_subscriptions: set[str] = set()

    # Resources
    @mcp.resource("test://static-text")
    def static_text_resource() -> str:
        """A static text resource for testing"""
        return "This is the content of the static text resource."

    @mcp.resource("test://static-binary")
    def static_binary_resource() -> bytes:
        """A static binary resource (image) for testing"""
        return base64.b64decode(TEST_IMAGE_BASE64)

    @mcp.resource("test://template/{id}/data")
    def template_resource(id: str) -> str:
        """A resource template with parameter substitution"""
        return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})

    @mcp.resource("test://watched-resource")
    def watched_resource() -> str:
        """A resource that can be subscribed to for updates"""
        return watched_resource_content

    # Prompts
    @mcp.prompt()
    def test_simple_prompt() -> list[UserMessage]:
        """A simple prompt without arguments"""
        return [
            UserMessage(
                role="user",
                content=TextContent(type="text", text="This is a simple prompt for testing."),
            )
        ]

    @mcp.prompt()
    def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
        """A prompt with required arguments"""
        return [
            UserMessage(
                role="user",
                content=TextContent(
                    type="text", text=f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"
                ),
            )
        ]

    @mcp.prompt()
    def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:
        """A prompt that includes an embedded resource"""
        return [
            UserMessage(
                role="user",
                content=EmbeddedResource(
                    type="resource",
                    resource=TextResourceContents(
                        uri=resourceUri,
                        mime_type="text/plain",
                        text="Embedded resource content for testing.",
                    ),
                ),
            ),
            UserMessage(
                role="user",
                content=TextContent(
                    type="text", text="Please process the embedded resource above."
                ),
            ),
        ]

    @mcp.prompt()
    def test_prompt_with_image() -> list[UserMessage]:
        """A prompt that includes image content"""
        return [
            UserMessage(
                role="user",
                content=ImageContent(type="image", data=TEST_IMAGE_BASE64, mime_type="image/png"),
            ),
            UserMessage(
                role="user",
                content=TextContent(type="text", text="Please analyze the image above."),
            ),
        ]

    @mcp.prompt()
    async def test_input_required_result_prompt(
        ctx: Context,
    ) -> list[UserMessage] | InputRequiredResult:
        """Tests InputRequiredResult from prompts/get (SEP-2322 non-tool request)"""
        responses = ctx.input_responses
        if responses and "user_context" in responses:
            answer = responses["user_context"]
            text = (
                answer.content.get("context", "?")
                if isinstance(answer, ElicitResult) and answer.content
                else "?"
            )
            return [
                UserMessage(
                    role="user",
                    content=TextContent(type="text", text=f"Use the following context: {text}"),
                )
            ]
        return InputRequiredResult(
            input_requests={
                "user_context": ElicitRequest(
                    params=ElicitRequestFormParams(
                        message="What context should the prompt use?",
                        requested_schema={
                            "type": "object",
                            "properties": {"context": {"type": "string"}},
                            "required": ["context"],
                        },
                    )
                )
            }
        )

    # Custom request handlers
    # TODO(felix): Add public APIs to MCPServer for subscribe_resource, unsubscribe_resource,
    # and set_logging_level to avoid accessing protected _lowlevel_server attribute.
    async def handle_set_logging_level(
        ctx: ServerRequestContext, params: SetLevelRequestParams
    ) -> EmptyResult:
        """Handle logging level changes"""
        logger.info(f"Log level set to: {params.level}")
        return EmptyResult()

    async def handle_subscribe(
        ctx: ServerRequestContext, params: SubscribeRequestParams
    ) -> EmptyResult:
        """Handle resource subscription"""
        resource_subscriptions.add(str(params.uri))
        logger.info(f"Subscribed to resource: {params.uri}")
        return EmptyResult()

    async def handle_unsubscribe(
        ctx: ServerRequestContext, params: UnsubscribeRequestParams
    ) -> EmptyResult:
        """Handle resource unsubscription"""
        resource_subscriptions.discard(str(params.uri))
        logger.info(f"Unsubscribed from resource: {params.uri}")
        return EmptyResult()

    low = mcp._lowlevel_server  # the SDK has no public API for these three handlers yet
    low.add_request_handler("logging/setLevel", SetLevelRequestParams, handle_set_logging_level)
    low.add_request_handler("resources/subscribe", SubscribeRequestParams, handle_subscribe)
    low.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, handle_unsubscribe)

    @mcp.completion()
    async def _handle_completion(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion:
        """Handle completion requests"""
        # Basic completion support - returns empty array for conformance
        # Real implementations would provide contextual suggestions
        return Completion(values=[], total=0, has_more=False)
