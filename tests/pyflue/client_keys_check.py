"""Drives a Flue server that requires API keys with PyFlue's own client, unchanged: the
key travels in the URL (`http://admin:<key>@host`), as HTTP and WebSocket Basic
credentials. Covers workflows, runs and the admin reads; prints what it saw as one JSON
object for the Rust test to check."""

import asyncio
import json
import sys

from pyflue.client import PyFlueClient


async def main(url: str) -> None:
    async with PyFlueClient(url) as client:
        invoked = await client.agents.invoke(
            "support_assistant", "ticket-1", payload={"message": "Status?"}
        )
        async with client.agents.connect("support_assistant", "ticket-1") as conn:
            over_socket = await conn.prompt("Over the socket")
        waited = await client.workflows.invoke(
            "release_flow", payload={"ticket": "ticket-2"}, wait=True
        )
        run_id = waited["run_id"]
        streamed = [
            event.type
            async for event in client.workflows.stream(
                "release_flow", {"ticket": "ticket-3"}
            )
        ]
        async with client.workflows.connect("release_flow") as conn:
            over_socket_run = await conn.run({"ticket": "ticket-4"})
        record = await client.runs.get(run_id)
        ends = await client.runs.events(run_id, after=0, types=["run_start", "run_end"])
        resumed = [event.type async for event in client.runs.stream(run_id, after=4)]
        admin_agents = await client.admin.agents.list()
        admin_instances = await client.admin.instances.list("release_flow", limit=2)
        admin_completed = await client.admin.runs.list(
            status="completed", agent_name="release_flow"
        )
        admin_for_instance = await client.admin.runs.list_for_instance(
            "release_flow", run_id
        )
        admin_run = await client.admin.runs.get(run_id)
    print(
        json.dumps(
            {
                "invoked": invoked,
                "over_socket": over_socket,
                "waited": waited,
                "streamed": streamed,
                "over_socket_run": [m["type"] for m in over_socket_run],
                "record": record,
                "ends": ends,
                "resumed": resumed,
                "admin_agents": admin_agents,
                "admin_instances": admin_instances,
                "admin_completed": admin_completed,
                "admin_for_instance": admin_for_instance,
                "admin_run": admin_run,
            }
        )
    )


asyncio.run(main(sys.argv[1]))
