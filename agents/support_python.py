"""The support-ticket example in Python, written as a PyFlue agent module: one instance
per ticket, its id scoping both the instructions and the `ticket_status` tool."""

from pyflue import create_agent, define_tool


def build(ctx):
    ticket = ctx.id

    def ticket_status(args):
        status = f"Ticket {ticket}: open, assigned to billing"
        if args.get("detail"):
            status += "; last update: refund approved, pending payout"
        return status

    return {
        "model": "anthropic/claude-haiku-4-5",
        "instructions": (
            f"You are a support assistant for ticket {ticket}. Answer only about this "
            "ticket; call ticket_status before you state its status."
        ),
        "tools": [
            define_tool(
                "ticket_status",
                ticket_status,
                description="Return the status of the current support ticket.",
                parameters={
                    "type": "object",
                    "properties": {
                        "detail": {"type": "boolean", "description": "Include the last update."}
                    },
                },
            )
        ],
    }


default = create_agent(build)
