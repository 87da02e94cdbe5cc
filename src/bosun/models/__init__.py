"""Model providers (openai, scripted, sim), pricing and provider construction."""

from bosun.models.base import ModelProvider, ModelRequest, ModelResponse, ToolCall, Usage

__all__ = ["ModelProvider", "ModelRequest", "ModelResponse", "ToolCall", "Usage"]
