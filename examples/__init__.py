"""Example agents to replay scenarios against (`replay run --agent examples.support_agent:agent`)."""
