"""The depth lookup table of the B-map coefficients: log Bbar_t depends on a pixel only through
its depth d(p), so it is tabulated over depth nodes and looked up per pixel (no per-pixel,
per-step array is ever stored).

State (independent of batch size and channels):

* ``log_bbar`` (T, n) and ``dlog_bbar`` (T, n): log Bbar_t and d/dd log Bbar_t at n depth nodes,
  float64 (``schedules.log_bbar_tables``);
* ``index`` (H, W): the node interval of each pixel, and ``weights`` (4, H, W): its cubic Hermite
  weights (h00, h10 h, h01, h11 h).

Nodes are the depth map's distinct values (with 0 and 1) when there are at most ``max_nodes`` of
them; a lookup is then exact. Otherwise they are a uniform grid (``max_nodes`` points, refined
if needed) and a pixel's value is the cubic Hermite interpolant of the exact values and
derivatives at the two nodes around it (error <= h^4/384 max|f''''|, checked at construction
against exact values at the interval midpoints, where that error peaks, to INTERP_TOL).
"""

from __future__ import annotations

import numpy as np
import torch

from sonodiff.diffusion.schedules import log_bbar_tables
from sonodiff.errors import InputError

#: Largest accepted interpolation error of log Bbar (checked at construction).
INTERP_TOL = 1e-8


class DepthTable:
    """log Bbar_t(p) for every step t and pixel p, from tables over depth nodes."""

    def __init__(
        self,
        log_bbar: torch.Tensor,
        dlog_bbar: torch.Tensor,
        index: torch.Tensor,
        weights: torch.Tensor | None,
    ):
        self.log_bbar = log_bbar  # (T, n) float64
        self.dlog_bbar = dlog_bbar  # (T, n) float64
        self.index = index  # (H, W) int64
        self.weights = weights  # (4, H, W) float64, None when every pixel sits on a node

    @classmethod
    def build(
        cls, depth: torch.Tensor, profile: np.ndarray, b_min: float, max_nodes: int = 513
    ) -> "DepthTable":
        """Tabulate log Bbar_t(d) = sum_{s<=t} log B_s(d) for ``depth`` (H, W) in [0, 1].

        Exact nodes when the map has at most ``max_nodes`` distinct values; otherwise a uniform
        grid, refined (doubled, at most twice) until the interpolation error <= INTERP_TOL; a
        b_min so small that 4 (max_nodes - 1) + 1 nodes do not suffice (below ~0.05) is refused.
        """
        d = depth.detach().cpu().double().numpy()
        distinct = np.unique(np.concatenate([d.ravel(), [0.0, 1.0]]))
        if len(distinct) <= max_nodes:
            log_bbar, dlog_bbar = log_bbar_tables(profile, distinct, b_min)
            return cls(*_tensors(log_bbar, dlog_bbar, np.searchsorted(distinct, d)), None)
        n = max_nodes
        for _ in range(3):
            table = cls._on_grid(d, profile, b_min, n)
            err = table._midpoint_error(profile, b_min)
            if err <= INTERP_TOL:
                return table
            n = 2 * n - 1
        raise InputError(
            "diffusion.b_min",
            f"{b_min} is too small to tabulate B-maps to {INTERP_TOL:.0e} "
            f"(error {err:.1e} with {table.num_nodes} depth nodes); use b_min >= 0.1",
        )

    @classmethod
    def _on_grid(cls, d: np.ndarray, profile: np.ndarray, b_min: float, n: int) -> "DepthTable":
        """Tables on n uniform nodes in [0, 1]; each pixel gets its interval and Hermite weights."""
        pos = d * (n - 1)
        index = np.minimum(np.floor(pos).astype(np.int64), n - 2)
        log_bbar, dlog_bbar = log_bbar_tables(profile, np.linspace(0.0, 1.0, n), b_min)
        weights = torch.from_numpy(_hermite_weights(pos - index, 1.0 / (n - 1)))
        return cls(*_tensors(log_bbar, dlog_bbar, index), weights)

    def _midpoint_error(self, profile: np.ndarray, b_min: float) -> float:
        """Largest |interpolated - exact| log Bbar at the interval midpoints (where the cubic
        Hermite error s^2 (1 - s)^2 h^4 |f''''| / 24 peaks)."""
        n = self.num_nodes
        exact, _ = log_bbar_tables(profile, (np.arange(n - 1) + 0.5) / (n - 1), b_min)
        w = torch.from_numpy(_hermite_weights(np.full(n - 1, 0.5), 1.0 / (n - 1)))
        approx = self._interpolate(slice(None), torch.arange(n - 1), w).numpy()
        return float(np.abs(approx - exact).max())

    @property
    def num_steps(self) -> int:
        return self.log_bbar.shape[0]

    @property
    def num_nodes(self) -> int:
        return self.log_bbar.shape[1]

    def lookup(self, t: torch.Tensor) -> torch.Tensor:
        """log Bbar_t(p) for steps ``t`` (B,) -> (B, H, W) float64; t = -1 gives 0 (empty product)."""
        rows = t.clamp(min=0)
        if self.weights is None:
            out = self.log_bbar[rows][:, self.index]
        else:
            out = self._interpolate(rows, self.index, self.weights)
        return torch.where((t >= 0).view(-1, *[1] * self.index.dim()), out, torch.zeros_like(out))

    def _interpolate(self, rows, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Cubic Hermite: f = h00 f_i + h10 h f'_i + h01 f_{i+1} + h11 h f'_{i+1}."""
        f, df = self.log_bbar[rows], self.dlog_bbar[rows]
        return (
            weights[0] * f[..., index]
            + weights[1] * df[..., index]
            + weights[2] * f[..., index + 1]
            + weights[3] * df[..., index + 1]
        )

    def select(self, steps: torch.Tensor) -> "DepthTable":
        """The table restricted to the given steps (rows)."""
        return DepthTable(self.log_bbar[steps], self.dlog_bbar[steps], self.index, self.weights)

    def to(self, device: torch.device | str) -> "DepthTable":
        return DepthTable(
            self.log_bbar.to(device),
            self.dlog_bbar.to(device),
            self.index.to(device),
            None if self.weights is None else self.weights.to(device),
        )

    @property
    def nbytes(self) -> int:
        """Bytes of all state held (tables, index map, weights)."""
        tensors = [self.log_bbar, self.dlog_bbar, self.index]
        if self.weights is not None:
            tensors.append(self.weights)
        return sum(x.numel() * x.element_size() for x in tensors)


def _tensors(log_bbar: np.ndarray, dlog_bbar: np.ndarray, index: np.ndarray):
    """(log_bbar, dlog_bbar, index) as torch tensors (float64, float64, int64)."""
    return (
        torch.from_numpy(log_bbar),
        torch.from_numpy(dlog_bbar),
        torch.from_numpy(np.asarray(index, dtype=np.int64)),
    )


def _hermite_weights(s: np.ndarray, h: float) -> np.ndarray:
    """Cubic Hermite basis at fractions s in [0, 1]: (h00, h10 h, h01, h11 h), shape (4, *s.shape)."""
    s2, s3 = s * s, s * s * s
    return np.stack([2 * s3 - 3 * s2 + 1, (s3 - 2 * s2 + s) * h, -2 * s3 + 3 * s2, (s3 - s2) * h])
