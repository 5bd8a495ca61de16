"""Networks of the built-in tasks: the modular-arithmetic ones take token sequences ``(B, T)``;
``NormalizedClassifier`` puts ImageNet's normalization in front of an image network."""

from __future__ import annotations

import math

import torch
from torch import nn


class AttentionTransformer(nn.Module):
    """One attention layer reading out at the last position, then a ReLU MLP; no LayerNorm.

        h = E[x] + P                       (B, 3, d)
        r = h_3 + W_O · attention(q = h_3, k = v = h)
        r = r + W_2 · relu(W_1 · r)
        logits = U · r                     (B, p)
    """

    def __init__(self, vocab_size: int, num_outputs: int, d_model: int, num_heads: int,
                 d_mlp: int, embed_std: float, seq_len: int = 3) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Parameter(torch.empty(seq_len, d_model))
        nn.init.normal_(self.token_embedding.weight, std=embed_std)
        nn.init.normal_(self.position_embedding, std=embed_std)
        self.query = nn.Linear(d_model, d_model, bias=False)
        self.key = nn.Linear(d_model, d_model, bias=False)
        self.value = nn.Linear(d_model, d_model, bias=False)
        self.attention_out = nn.Linear(d_model, d_model, bias=False)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_mlp), nn.ReLU(), nn.Linear(d_mlp, d_model))
        self.unembed = nn.Linear(d_model, num_outputs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden = self.token_embedding(tokens) + self.position_embedding  # (B, T, d)
        batch, seq_len, d_model = hidden.shape
        head_dim = d_model // self.num_heads
        last = hidden[:, -1]
        query = self.query(last).view(batch, self.num_heads, 1, head_dim)
        key = self.key(hidden).view(batch, seq_len, self.num_heads, head_dim).transpose(1, 2)
        value = self.value(hidden).view(batch, seq_len, self.num_heads, head_dim).transpose(1, 2)
        weights = torch.softmax(query @ key.transpose(-1, -2) / math.sqrt(head_dim), dim=-1)
        attended = (weights @ value).reshape(batch, d_model)
        residual = last + self.attention_out(attended)
        residual = residual + self.mlp(residual)
        return self.unembed(residual)


class EmbeddingMLP(nn.Module):
    """Concatenated token embeddings -> ReLU hidden layer -> logits."""

    def __init__(self, vocab_size: int, num_outputs: int, d_embed: int, d_hidden: int,
                 embed_std: float, seq_len: int = 3) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_embed)
        nn.init.normal_(self.embedding.weight, std=embed_std)
        self.layers = nn.Sequential(
            nn.Linear(seq_len * d_embed, d_hidden), nn.ReLU(), nn.Linear(d_hidden, num_outputs)
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.layers(self.embedding(tokens).flatten(1))


class DisjointByTask(nn.Module):
    """One sub-network per operation token: inputs of different tasks share no parameter."""

    def __init__(self, networks: list[nn.Module], op_tokens: list[int], num_outputs: int,
                 op_position: int = 1) -> None:
        super().__init__()
        self.networks = nn.ModuleList(networks)
        self.op_tokens = op_tokens
        self.num_outputs = num_outputs
        self.op_position = op_position

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        logits = tokens.new_zeros((len(tokens), self.num_outputs), dtype=torch.float32)
        for network, op_token in zip(self.networks, self.op_tokens, strict=True):
            routed = tokens[:, self.op_position] == op_token
            if routed.any():
                logits = logits.index_put((routed.nonzero().squeeze(1),), network(tokens[routed]))
        return logits


class NormalizedClassifier(nn.Module):
    """An image network behind ImageNet's input normalization: it takes uint8 images.

        x ↦ network((x / 255 - mean) / std),   mean, std = ImageNet's per-channel statistics

    Images stay uint8 in memory (a quarter of float32: 10,000 images at 224 px take 1.5 GB),
    and the weights live under ``network.`` in the state dict.
    """

    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network((images.float() / 255.0 - self.mean) / self.std)
