"""Transformer pieces shared by E, N and D, written out nanoGPT-style (pre-norm, no causal mask)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention of ``x`` over ``memory`` (self-attention when memory is x)."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(hidden, hidden)
        self.kv = nn.Linear(hidden, 2 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.dropout = dropout

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None
    ) -> torch.Tensor:
        batch, length, hidden = x.shape
        split = lambda t: t.view(batch, -1, self.heads, hidden // self.heads).transpose(1, 2)
        q = split(self.q(x))
        k, v = (split(t) for t in self.kv(memory).chunk(2, dim=-1))
        # memory_mask: (batch, memory_length), True where a key may be attended to.
        mask = None if memory_mask is None else memory_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(y.transpose(1, 2).reshape(batch, length, hidden))


class Block(nn.Module):
    """Self-attention, then (optionally) cross-attention to the encoded utterance, then an MLP."""

    def __init__(self, hidden: int, heads: int, dropout: float, cross: bool):
        super().__init__()
        self.ln_self = nn.LayerNorm(hidden)
        self.self_attn = Attention(hidden, heads, dropout)
        self.ln_cross = nn.LayerNorm(hidden) if cross else None
        self.cross_attn = Attention(hidden, heads, dropout) if cross else None
        self.ln_mlp = nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Linear(4 * hidden, hidden), nn.Dropout(dropout)
        )

    def forward(
        self,
        x: torch.Tensor,
        self_mask: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        h = self.ln_self(x)
        x = x + self.self_attn(h, h, self_mask)
        if self.cross_attn is not None:
            x = x + self.cross_attn(self.ln_cross(x), memory, memory_mask)
        return x + self.mlp(self.ln_mlp(x))


class Stack(nn.Module):
    """Blocks over a sequence with learned positions, ending in a layer norm."""

    def __init__(self, layers: int, hidden: int, heads: int, dropout: float, max_length: int, cross: bool):
        super().__init__()
        self.positions = nn.Embedding(max_length, hidden)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(hidden, heads, dropout, cross) for _ in range(layers))
        self.ln_final = nn.LayerNorm(hidden)

    def forward(
        self,
        x: torch.Tensor,
        self_mask: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.drop(x + self.positions(torch.arange(x.shape[1], device=x.device)))
        for block in self.blocks:
            x = block(x, self_mask, memory, memory_mask)
        return self.ln_final(x)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (as in DDPM and Diffusion-LM)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))
