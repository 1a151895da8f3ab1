"""A small A2A protocol 1.0 agent built on the official Python SDK (PyPI a2a-sdk),
in the shape of the SDK's "hello world" agent. It is the remote peer that Facio's
Rust A2A client talks to in tests.

Usage: a2a_peer.py PORT TOKEN
  Serves the public agent card at /.well-known/agent-card.json and JSON-RPC
  (SendMessage, GetTask, ...) at / on 127.0.0.1:PORT. JSON-RPC calls need
  `Authorization: Bearer TOKEN`, otherwise HTTP 401. Prints
  `listening on http://127.0.0.1:PORT` once it accepts connections.

Behaviour on the text of the user message (every reply is a Task):
  contains "ask"   -> TASK_STATE_INPUT_REQUIRED asking "Which colour do you want?";
                      the follow-up on the same task completes with "You chose <answer>."
  contains "fail"  -> TASK_STATE_FAILED, "The peer could not do it."
  contains "slow"  -> TASK_STATE_WORKING, 30 s sleep, then completes as below
  otherwise        -> TASK_STATE_COMPLETED, artifact "answer" "Hello World: <text>"
"""
import asyncio
import contextlib
import signal
import sys

import uvicorn
from a2a.helpers.proto_helpers import new_task
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    Part,
    SecurityRequirement,
    SecurityScheme,
    StringList,
    TaskState,
)
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from starlette.applications import Starlette
from starlette.responses import JSONResponse

QUESTION = "Which colour do you want?"
FAILURE = "The peer could not do it."


class PeerExecutor(AgentExecutor):
    """The agent logic: one call per incoming message, publishing Task events."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        texts = [p.text for p in context.message.parts if p.text]
        text = texts[0] if texts else ""
        print(f"received: {text}", file=sys.stderr, flush=True)

        task = context.current_task
        if task is None:
            # First message of a task: publish the Task itself (with the user
            # message in its history) so every reply is a Task, not a Message.
            task = new_task(context.task_id, context.context_id, TaskState.TASK_STATE_SUBMITTED, history=[context.message])
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)

        async def complete(reply: str) -> None:
            await updater.add_artifact([Part(text=reply)], name="answer")
            await updater.complete(updater.new_agent_message([Part(text=reply)]))

        if task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED:
            # Follow-up to our question: this message is the answer.
            await complete(f"You chose {text}.")
            return
        lowered = text.lower()
        if "ask" in lowered:
            # Interrupted state: returning here ends this request; the SDK calls
            # execute() again when a message with the same taskId arrives.
            await updater.requires_input(updater.new_agent_message([Part(text=QUESTION)]))
            return
        if "fail" in lowered:
            await updater.failed(updater.new_agent_message([Part(text=FAILURE)]))
            return
        if "slow" in lowered:
            await updater.start_work()
            await asyncio.sleep(30)
        await complete(f"Hello World: {text}")

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        # CancelTask: the SDK cancels the running execute() after this returns.
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def agent_card(base_url: str) -> AgentCard:
    return AgentCard(
        name="Python peer",
        description="A2A test peer on the official Python SDK: greets, asks, fails or dawdles on request.",
        version="1.0.0",
        supported_interfaces=[AgentInterface(url=base_url, protocol_binding="JSONRPC", protocol_version="1.0")],
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(
                id="hello",
                name="Hello",
                description="Answers with Hello World and the text it got.",
                tags=["hello", "test"],
                examples=["hi there"],
            )
        ],
        security_schemes={"bearer": SecurityScheme(http_auth_security_scheme=HTTPAuthSecurityScheme(scheme="Bearer"))},
        security_requirements=[SecurityRequirement(schemes={"bearer": StringList()})],
    )


class BearerAuth:
    """ASGI wrapper: everything but the agent card needs `Authorization: Bearer TOKEN`."""

    def __init__(self, app, token: str):
        self.app = app
        self.expected = f"Bearer {token}"

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] != AGENT_CARD_WELL_KNOWN_PATH:
            headers = dict(scope["headers"])
            if headers.get(b"authorization", b"").decode("latin-1") != self.expected:
                body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Unauthorized: missing or wrong bearer token"}}
                response = JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def serve(port: int, token: str) -> None:
    base_url = f"http://127.0.0.1:{port}/"
    card = agent_card(base_url)
    handler = DefaultRequestHandler(agent_executor=PeerExecutor(), task_store=InMemoryTaskStore(), agent_card=card)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        await handler.aclose()  # cancel agent runs still going (e.g. "slow")

    app = Starlette(routes=create_agent_card_routes(card) + create_jsonrpc_routes(handler, rpc_url="/"), lifespan=lifespan)
    # A short graceful-shutdown timeout so a pending "slow" request cannot hold up SIGTERM.
    config = uvicorn.Config(BearerAuth(app, token), host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():  # failed to start (e.g. port taken): surface the error
            await serving
            raise SystemExit(1)
        await asyncio.sleep(0.05)
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    await serving


def main() -> None:
    port, token = int(sys.argv[1]), sys.argv[2]
    # uvicorn handles SIGTERM itself while serving, then re-raises it to the
    # previous handler; make that handler a clean exit (status 0).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    asyncio.run(serve(port, token))


if __name__ == "__main__":
    main()
