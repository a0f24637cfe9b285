"""The Hugging Face transformers backend and its kernels.

* :mod:`~sharpbench.models.hf.backend`: :class:`HFBackend` (a checkpoint, hub id or GGUF file),
  :meth:`HFBackend.from_model` (an already-loaded model, for optimisation loops), the registry entry;
* :mod:`~sharpbench.models.hf.loading`: loading with ``device_map`` and peft adapters (``--model-args``);
* :mod:`~sharpbench.models.hf.scoring`: loglikelihood scoring of token requests, one pass per shared context;
* :mod:`~sharpbench.models.hf.fastpath`: the lean forward (Llama family, Gemma-3) over packed tokens;
* :mod:`~sharpbench.models.hf.segattn`: attention segment by segment (contexts, continuations, tree nodes);
* :mod:`~sharpbench.models.hf.prefix` and :mod:`~sharpbench.models.hf.treepack`: the prefix tree over
  the requests' contexts and its layout as attention segments, with a key/value cache between calls;
* :mod:`~sharpbench.models.hf.prefill`: generation prefill through the same tree.

The kernels import torch; this package's ``__init__`` does not (start-up time).
"""

from sharpbench.models.hf.backend import (
    HFBackend,
    InMemoryHFBackend,
    LmEvalTokenization,
    check_causal_lm,
    default_prefix_cache_mb,
    lmeval_encode,
    lora_folded,
    plain_modules,
    prefix_token_id,
    resolve_max_length,
    with_bos,
)
from sharpbench.models.hf.loading import BACKEND, identify_hf, load_hf, load_hf_model

__all__ = [
    "BACKEND",
    "HFBackend",
    "InMemoryHFBackend",
    "LmEvalTokenization",
    "check_causal_lm",
    "default_prefix_cache_mb",
    "identify_hf",
    "lmeval_encode",
    "load_hf",
    "load_hf_model",
    "lora_folded",
    "plain_modules",
    "prefix_token_id",
    "resolve_max_length",
    "with_bos",
]
