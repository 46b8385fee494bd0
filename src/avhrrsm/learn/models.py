"""The deep models, behind one registry keyed by name.

Every model maps a sequence of normalised dynamic inputs ``(batch, L, dynamic features)`` and
the normalised static layers ``(batch, static features)`` to the normalised soil moisture of
the sequence's last day ``(batch,)``. The static layers are appended to every time step.

- ``lstm``: an LSTM; the last hidden state feeds a linear head.
- ``bilstm``: a bidirectional LSTM; the forward state at the last day and the backward state
  at the first day (each has read the whole sequence) feed the head.
- ``atlstm``: an LSTM whose hidden states at every lag are weighted by an additive attention
  layer (Bahdanau-style score ``v . tanh(W h_t)``, softmax over lags); the weighted context and
  the last state feed the head. :meth:`AttentionLSTM.attention_weights` reads the weights out.
- ``transformer``: a linear embedding plus learned position embedding, a Transformer encoder
  (pre-norm), and the last day's token feeds the head.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

MAX_SEQUENCE_LENGTH = 64


class SequenceRegressor(nn.Module):
    """Common interface: ``forward(dynamic, static) -> (batch,)``."""

    def __init__(self, n_dynamic: int, n_static: int) -> None:
        super().__init__()
        self.n_dynamic = n_dynamic
        self.n_static = n_static

    def _inputs(self, dynamic: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        if dynamic.dim() != 3 or dynamic.shape[-1] != self.n_dynamic:
            raise ValueError(
                f"dynamic inputs must be (batch, L, {self.n_dynamic}), got {tuple(dynamic.shape)}"
            )
        if static.shape != (dynamic.shape[0], self.n_static):
            raise ValueError(
                f"static inputs must be ({dynamic.shape[0]}, {self.n_static}), got {tuple(static.shape)}"
            )
        repeated = static[:, None, :].expand(-1, dynamic.shape[1], -1)
        return torch.cat([dynamic, repeated], dim=-1)


def _lstm(
    n_inputs: int, hidden_size: int, num_layers: int, dropout: float, bidirectional: bool = False
) -> nn.LSTM:
    """A batch-first LSTM (dropout between layers only where there are several)."""
    return nn.LSTM(
        n_inputs,
        hidden_size,
        num_layers=num_layers,
        batch_first=True,
        bidirectional=bidirectional,
        dropout=dropout if num_layers > 1 else 0.0,
    )


class LSTMRegressor(SequenceRegressor):
    def __init__(
        self, n_dynamic: int, n_static: int, hidden_size: int, num_layers: int, dropout: float
    ) -> None:
        super().__init__(n_dynamic, n_static)
        self.lstm = _lstm(n_dynamic + n_static, hidden_size, num_layers, dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, dynamic: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(self._inputs(dynamic, static))
        return self.head(self.dropout(states[:, -1])).squeeze(-1)


class BiLSTMRegressor(SequenceRegressor):
    def __init__(
        self, n_dynamic: int, n_static: int, hidden_size: int, num_layers: int, dropout: float
    ) -> None:
        super().__init__(n_dynamic, n_static)
        self.hidden_size = hidden_size
        self.lstm = _lstm(n_dynamic + n_static, hidden_size, num_layers, dropout, True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_size, 1)

    def forward(self, dynamic: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(self._inputs(dynamic, static))
        forward_last = states[:, -1, : self.hidden_size]
        backward_first = states[:, 0, self.hidden_size :]
        summary = torch.cat([forward_last, backward_first], dim=-1)
        return self.head(self.dropout(summary)).squeeze(-1)


class AttentionLSTM(SequenceRegressor):
    def __init__(
        self,
        n_dynamic: int,
        n_static: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        attention_size: int,
    ) -> None:
        super().__init__(n_dynamic, n_static)
        self.lstm = _lstm(n_dynamic + n_static, hidden_size, num_layers, dropout)
        self.score_hidden = nn.Linear(hidden_size, attention_size)
        self.score_out = nn.Linear(attention_size, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_size, 1)

    def _attend(
        self, dynamic: torch.Tensor, static: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        states, _ = self.lstm(self._inputs(dynamic, static))
        scores = self.score_out(torch.tanh(self.score_hidden(states))).squeeze(-1)
        weights = torch.softmax(scores, dim=1)  # (batch, L), sums to 1 over lags
        context = torch.einsum("bl,blh->bh", weights, states)
        return states, weights, context

    def forward(self, dynamic: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        states, _, context = self._attend(dynamic, static)
        summary = torch.cat([context, states[:, -1]], dim=-1)
        return self.head(self.dropout(summary)).squeeze(-1)

    def attention_weights(self, dynamic: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        """Attention weight of every lag, ``(batch, L)``; the last column is the sample day."""
        return self._attend(dynamic, static)[1]


class TransformerRegressor(SequenceRegressor):
    def __init__(
        self,
        n_dynamic: int,
        n_static: int,
        d_model: int,
        nhead: int,
        num_layers: int,
        dim_feedforward: int,
        dropout: float,
    ) -> None:
        super().__init__(n_dynamic, n_static)
        self.embed = nn.Linear(n_dynamic + n_static, d_model)
        self.position = nn.Parameter(torch.zeros(MAX_SEQUENCE_LENGTH, d_model))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model,
            nhead,
            dim_feedforward=dim_feedforward,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers=num_layers, enable_nested_tensor=False
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 1)

    def forward(self, dynamic: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(self._inputs(dynamic, static))
        length = tokens.shape[1]
        if length > MAX_SEQUENCE_LENGTH:
            raise ValueError(f"sequence length {length} exceeds {MAX_SEQUENCE_LENGTH}")
        # the position embedding counts back from the sample day, so L can vary
        encoded = self.encoder(tokens + self.position[MAX_SEQUENCE_LENGTH - length :])
        return self.head(self.norm(encoded[:, -1])).squeeze(-1)


MODELS: dict[str, type[SequenceRegressor]] = {
    "lstm": LSTMRegressor,
    "bilstm": BiLSTMRegressor,
    "atlstm": AttentionLSTM,
    "transformer": TransformerRegressor,
}
DEEP_MODELS = tuple(MODELS)


def build_model(
    name: str, n_dynamic: int, n_static: int, hyperparameters: Mapping[str, Any]
) -> SequenceRegressor:
    """A model of the registry with the given hyperparameters (as in config ``models.<name>``)."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](n_dynamic, n_static, **dict(hyperparameters))


def masked_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the samples whose target is finite (missing targets skipped).

    With no finite target the loss is zero (and carries no gradient from the targets).
    """
    valid = torch.isfinite(target)
    diff = torch.where(valid, prediction - torch.nan_to_num(target), torch.zeros_like(prediction))
    return (diff**2).sum() / valid.sum().clamp(min=1)
