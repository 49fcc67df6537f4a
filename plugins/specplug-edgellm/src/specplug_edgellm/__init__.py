"""specplug-edgellm: EdgeLLM / LLMCad (Xu et al. 2023): a token tree whose width adapts to the draft's confidence, with fallback to verification when the draft is unsure."""

from specplug_edgellm.proposer import EdgeLlmOptions, EdgeLlmProposer

__all__ = ["EdgeLlmOptions", "EdgeLlmProposer"]
