"""Model providers (openai, scripted, sim, and any registered by name), pricing, breakers."""

from bosun.models.base import ModelProvider, ModelRequest, ModelResponse, ToolCall, Usage

__all__ = ["ModelProvider", "ModelRequest", "ModelResponse", "ToolCall", "Usage"]
