"""The official A2A Python SDK (PyPI a2a-sdk, protocol 1.0) as a caller of Facio's
A2A endpoint. One step per run; prints what it saw as JSON.

Usage: a2a_client.py BASE_URL TOKEN STEP [ARGS...]
  card
  send TEXT [CONTEXT_ID] [TASK_ID]        blocking SendMessage
  send-now TEXT [CONTEXT_ID]              SendMessage with returnImmediately
  stream TEXT [CONTEXT_ID]                SendStreamingMessage
  get TASK_ID
  list [CONTEXT_ID] [STATE] [PAGE_SIZE] [PAGE_TOKEN]
  cancel TASK_ID
  subscribe TASK_ID
TOKEN "-" sends no Authorization header.
"""
import asyncio
import json
import sys
import uuid

import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskState,
)
from google.protobuf.json_format import MessageToDict


def task_report(task):
    return {
        "id": task.id,
        "contextId": task.context_id,
        "state": TaskState.Name(task.status.state),
        "statusText": "\n".join(p.text for p in task.status.message.parts if p.text),
        "statusData": [MessageToDict(p)["data"] for p in task.status.message.parts if p.HasField("data")],
        "artifacts": ["".join(p.text for p in a.parts) for a in task.artifacts],
        "history": [[Role.Name(m.role), "".join(p.text for p in m.parts)] for m in task.history],
    }


def user_message(text, context_id=None, task_id=None):
    message = Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text=text)])
    if context_id:
        message.context_id = context_id
    if task_id:
        message.task_id = task_id
    return message


async def run(base, token, step, args):
    headers = {} if token == "-" else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        streaming = step in ("stream", "subscribe")
        factory = ClientFactory(ClientConfig(httpx_client=http, streaming=streaming))
        client = await factory.create_from_url(base)
        card = client._card
        if step == "card":
            return {
                "name": card.name,
                "version": card.version,
                "interfaces": [[i.url, i.protocol_binding, i.protocol_version] for i in card.supported_interfaces],
                "streaming": card.capabilities.streaming,
                "skills": [s.id for s in card.skills],
                "schemes": list(card.security_schemes.keys()),
            }
        if step in ("send", "send-now", "stream"):
            text = args[0]
            context_id = args[1] if len(args) > 1 and args[1] != "-" else None
            task_id = args[2] if len(args) > 2 else None
            config = SendMessageConfiguration(history_length=20)
            if step == "send-now":
                config.return_immediately = True
            request = SendMessageRequest(message=user_message(text, context_id, task_id), configuration=config)
            events = []
            async for event in client.send_message(request):
                kind = event.WhichOneof("payload")
                if kind == "task":
                    events.append({"kind": "task", **task_report(event.task)})
                elif kind == "status_update":
                    events.append({"kind": "status", "state": TaskState.Name(event.status_update.status.state)})
                elif kind == "artifact_update":
                    events.append({"kind": "artifact", "text": "".join(p.text for p in event.artifact_update.artifact.parts)})
                else:
                    events.append({"kind": kind})
            if step == "stream":
                return {"events": events}
            return events[0]
        if step == "get":
            return task_report(await client.get_task(GetTaskRequest(id=args[0], history_length=20)))
        if step == "list":
            request = ListTasksRequest(page_size=int(args[2]) if len(args) > 2 else 50)
            if args and args[0] != "-":
                request.context_id = args[0]
            if len(args) > 1 and args[1] != "-":
                request.status = TaskState.Value(args[1])
            if len(args) > 3:
                request.page_token = args[3]
            listed = await client.list_tasks(request)
            return {
                "ids": [t.id for t in listed.tasks],
                "states": [TaskState.Name(t.status.state) for t in listed.tasks],
                "next": listed.next_page_token,
                "total": listed.total_size,
                "pageSize": listed.page_size,
            }
        if step == "cancel":
            return task_report(await client.cancel_task(CancelTaskRequest(id=args[0])))
        if step == "subscribe":
            events = []
            async for event in client.subscribe(SubscribeToTaskRequest(id=args[0])):
                kind = event.WhichOneof("payload")
                if kind == "status_update":
                    events.append({"kind": "status", "state": TaskState.Name(event.status_update.status.state)})
                elif kind == "task":
                    events.append({"kind": "task", "state": TaskState.Name(event.task.status.state)})
                else:
                    events.append({"kind": kind})
            return {"events": events}
        raise SystemExit(f"unknown step {step}")


def main():
    base, token, step, *args = sys.argv[1:]
    try:
        report = asyncio.run(run(base, token, step, args))
    except Exception as e:  # the SDK's typed errors are what the test checks
        report = {"error": type(e).__name__, "message": str(getattr(e, "message", e))}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
