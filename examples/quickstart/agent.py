"""Quickstart: an agent with two tools. Run it with
    bosun run examples/quickstart/agent.py --input "Weather in Lisbon, in Fahrenheit?"
"""

from bosun import Agent, Limits, tool


@tool(effect="read", idempotent=True)
def get_weather(city: str) -> dict:
    """Current weather for a city, in Celsius."""
    return {"city": city, "celsius": 21.5, "sky": "clear"}


@tool(effect="read", idempotent=True)
def to_fahrenheit(celsius: float) -> float:
    """Convert Celsius to Fahrenheit."""
    return round(celsius * 9 / 5 + 32, 1)


agent = Agent(
    name="weather",
    instructions="Answer weather questions using the tools.",
    # Offline: play these turns. For a real model: model="openai:gpt-4o-mini"
    model={
        "provider": "scripted",
        "turns": [
            {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Lisbon"}}]},
            {"tool_calls": [{"name": "to_fahrenheit", "arguments": {"celsius": 21.5}}]},
            {"content": "It is 70.7°F and clear in Lisbon."},
        ],
    },
    tools=[get_weather, to_fahrenheit],
    limits=Limits(max_steps=10, max_cost=0.10),
)
