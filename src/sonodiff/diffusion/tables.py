"""Per-pixel B-map state without a per-pixel table: log Bbar_t depends on a pixel only through
its depth d(p), so it is tabulated over depth nodes and looked up per pixel.

State (independent of batch size and channels):

* ``log_bbar`` (T, n) and ``dlog_bbar`` (T, n): log Bbar_t and d/dd log Bbar_t at n depth nodes,
  float64 (``schedules.log_bbar_tables``);
* ``index`` (H, W): the node interval of each pixel, and ``weights`` (4, H, W): its cubic Hermite
  weights (h00, h10 h, h01, h11 h).

Nodes are the depth map's distinct values (with 0 and 1) when there are at most ``max_nodes`` of
them; a lookup is then exact. Otherwise they are a uniform grid of ``max_nodes`` points and a pixel's
value is the cubic Hermite interpolant of the exact values and derivatives at the two nodes
around it (error <= h^4/384 max|f''''|, checked at construction against exact values at the
interval midpoints, where that error peaks).
"""

from __future__ import annotations

import numpy as np
import torch

from sonodiff.diffusion.schedules import log_bbar_tables

#: Largest accepted interpolation error of log Bbar (checked at construction).
INTERP_TOL = 1e-9


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
        """Tabulate log Bbar_t(d) = sum_{s<=t} log B_s(d) for ``depth`` (H, W) in [0, 1]."""
        d = depth.detach().cpu().double().numpy()
        distinct = np.unique(np.concatenate([d.ravel(), [0.0, 1.0]]))
        if len(distinct) <= max_nodes:
            nodes = distinct
            index = np.searchsorted(nodes, d)
            weights = None
        else:
            nodes = np.linspace(0.0, 1.0, max_nodes)
            pos = d * (max_nodes - 1)
            index = np.minimum(np.floor(pos).astype(np.int64), max_nodes - 2)
            weights = _hermite_weights(pos - index, 1.0 / (max_nodes - 1))
        log_bbar, dlog_bbar = log_bbar_tables(profile, nodes, b_min)
        table = cls(
            torch.from_numpy(log_bbar),
            torch.from_numpy(dlog_bbar),
            torch.from_numpy(np.asarray(index, dtype=np.int64)),
            None if weights is None else torch.from_numpy(weights),
        )
        if weights is not None:
            mid = (nodes[:-1] + nodes[1:]) / 2
            exact, _ = log_bbar_tables(profile, mid, b_min)
            w = torch.from_numpy(_hermite_weights(np.full(len(mid), 0.5), nodes[1] - nodes[0]))
            approx = table._interpolate(slice(None), torch.arange(len(mid)), w).numpy()
            err = float(np.abs(approx - exact).max())
            if err > INTERP_TOL:
                raise AssertionError(
                    f"depth interpolation error {err:.2e} > {INTERP_TOL:.0e}: raise depth_nodes"
                )
        return table

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


def _hermite_weights(s: np.ndarray, h: float) -> np.ndarray:
    """Cubic Hermite basis at fractions s in [0, 1]: (h00, h10 h, h01, h11 h), shape (4, *s.shape)."""
    s2, s3 = s * s, s * s * s
    return np.stack([2 * s3 - 3 * s2 + 1, (s3 - 2 * s2 + s) * h, -2 * s3 + 3 * s2, (s3 - s2) * h])
