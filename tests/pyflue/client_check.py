"""Drives a running Flue server with PyFlue's own client, unchanged, and prints what
it saw as one JSON object for the Rust test to check. Usage: client_check.py URL
[AGENT] (default support_assistant)."""

import asyncio
import json
import sys

from pyflue.client import PyFlueClient


async def main(url: str, agent: str) -> None:
    async with PyFlueClient(url) as client:
        health = await client.health()
        agents = await client.agents()
        invoked = await client.agents.invoke(
            agent,
            "ticket-8472",
            payload={"message": "Where is my refund?", "session": "billing"},
        )
        events = [
            {"type": event.type, "data": event.data}
            async for event in client.agents.stream(
                agent,
                "ticket-8472",
                payload={"prompt": "And now?", "session": "billing"},
            )
        ]
        async with client.agents.connect(agent, "ticket-8472") as conn:
            first = await conn.prompt("Over the socket", session="billing")
            second = await conn.prompt("Another session", session="shipping")
    print(
        json.dumps(
            {
                "health": health,
                "agents": [a["name"] for a in agents],
                "invoked": invoked,
                "events": events,
                "ws": [first, second],
            }
        )
    )


asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "support_assistant"))
