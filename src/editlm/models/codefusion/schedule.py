"""The square-root noise schedule of Diffusion-LM (Li et al. 2022), which CodeFusion uses.

``alpha_bar(s) = 1 - sqrt(s + 1e-4)`` for ``s = t / T`` in [0, 1]: noise rises quickly in the first steps
(unlike the cosine schedule), which suits embeddings of discrete tokens, whose neighbourhoods a little
noise does not blur. Betas are ``min(1 - alpha_bar(s_{i+1}) / alpha_bar(s_i), 0.999)`` exactly as in
Diffusion-LM's ``betas_for_alpha_bar``; everything below is kept in float64 and cast when used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

MAX_BETA = 0.999


def sqrt_alpha_bar(s: float) -> float:
    return 1.0 - math.sqrt(s + 1e-4)


def sqrt_betas(steps: int) -> torch.Tensor:
    """Diffusion-LM's ``get_named_beta_schedule("sqrt", steps)``."""
    if steps < 1:
        raise ValueError(f"diffusion steps must be positive, not {steps}")
    betas = [
        min(1.0 - sqrt_alpha_bar((i + 1) / steps) / sqrt_alpha_bar(i / steps), MAX_BETA) for i in range(steps)
    ]
    return torch.tensor(betas, dtype=torch.float64)


class NoiseSchedule:
    """Forward noising q(x_t | x_0) and the DDPM reverse step q(x_{t-1} | x_t, x0_hat).

    ``timesteps[i]`` is the index into the *training* schedule that step ``i`` stands for: the identity
    for the full schedule, a subsequence after :meth:`respace` (sampling with fewer steps than training,
    as in improved-diffusion's ``space_timesteps``), so the denoiser always sees the ``t`` it was trained on.
    """

    def __init__(self, betas: torch.Tensor, timesteps: Sequence[int] | None = None):
        self.betas = betas.to(torch.float64)
        self.num_steps = len(betas)
        self.timesteps = list(range(self.num_steps)) if timesteps is None else list(timesteps)
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, 0)
        prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        self.alphas_cumprod_prev = prev
        # Posterior q(x_{t-1} | x_t, x_0) = N(coef_x0 * x_0 + coef_xt * x_t, variance).
        self.posterior_variance = self.betas * (1.0 - prev) / (1.0 - self.alphas_cumprod)
        self.posterior_log_variance = torch.log(
            torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]])
            if self.num_steps > 1
            else self.posterior_variance.clamp_min(1e-20)
        )
        self.coef_x0 = self.betas * prev.sqrt() / (1.0 - self.alphas_cumprod)
        self.coef_xt = (1.0 - prev) * (1.0 - self.betas).sqrt() / (1.0 - self.alphas_cumprod)

    @classmethod
    def sqrt(cls, steps: int) -> NoiseSchedule:
        return cls(sqrt_betas(steps))

    def respace(self, steps: int) -> NoiseSchedule:
        """The same process visited at ``steps`` evenly spaced timesteps (always ending at t = 0)."""
        if not 1 <= steps <= self.num_steps:
            raise ValueError(f"sampling steps must be in 1..{self.num_steps}, not {steps}")
        if steps == self.num_steps:
            return self
        last_t = self.num_steps - 1
        keep = sorted({round(i * last_t / (steps - 1)) for i in range(steps)}) if steps > 1 else [last_t]
        betas, last = [], 1.0
        for t in keep:
            alpha_bar = float(self.alphas_cumprod[t])
            betas.append(1.0 - alpha_bar / last)
            last = alpha_bar
        return NoiseSchedule(torch.tensor(betas, dtype=torch.float64), [self.timesteps[t] for t in keep])

    def _at(self, values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``values[t]`` shaped to broadcast over ``like`` (batch, length, dim)."""
        out = values.to(like.device)[t.to(like.device)].to(like.dtype)
        return out.view(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps."""
        return (
            self._at(self.alphas_cumprod.sqrt(), t, x0) * x0
            + self._at((1.0 - self.alphas_cumprod).sqrt(), t, x0) * noise
        )

    def eps_from_x0(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """The noise that a predicted x_0 implies: (x_t - sqrt(alpha_bar) x_0) / sqrt(1 - alpha_bar)."""
        return (x_t - self._at(self.alphas_cumprod.sqrt(), t, x_t) * x0) / self._at(
            (1.0 - self.alphas_cumprod).sqrt(), t, x_t
        )

    def p_sample(
        self, x_t: torch.Tensor, i: int, x0_hat: torch.Tensor, noise: torch.Tensor | None
    ) -> torch.Tensor:
        """One reverse step from position ``i`` of this schedule: the posterior mean plus noise (none at i = 0)."""
        t = torch.full((x_t.shape[0],), i, dtype=torch.long)
        mean = self._at(self.coef_x0, t, x_t) * x0_hat + self._at(self.coef_xt, t, x_t) * x_t
        if i == 0 or noise is None:
            return mean
        return mean + torch.exp(0.5 * self._at(self.posterior_log_variance, t, x_t)) * noise
