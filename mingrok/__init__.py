"""minGrok: xAI's Grok-1 architecture in miniature, equal to the official forward pass."""

from .config import GROK1, SHAKESPEARE, MinGrokConfig, count_parameters, ffn_size
from .kv_cache import KVCache
from .model import MinGrok, MinGrokOutput
from .sampling import generate

__version__ = "0.1.0"

__all__ = [
    "GROK1",
    "SHAKESPEARE",
    "KVCache",
    "MinGrok",
    "MinGrokConfig",
    "MinGrokOutput",
    "__version__",
    "count_parameters",
    "ffn_size",
    "generate",
]
