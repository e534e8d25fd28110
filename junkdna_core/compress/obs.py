"""Inverse-Hessian helpers shared by the Optimal-Brain-Surgeon style methods (SparseGPT, GPTQ).

For a linear layer with calibration inputs ``X`` (tokens x in_features), the
layer-wise reconstruction loss ``||X W^T - X W'^T||^2`` has Hessian
``H = 2 X^T X / tokens``. Both methods sweep the input columns left to right
and, after fixing column ``i``, spread its error over the remaining columns using
row ``i`` of the upper Cholesky factor ``U`` of ``H^-1`` (``H^-1 = U^T U``).

Precision: ``H`` and its factorizations are computed in float64 (an O(n^3) step
done once per layer, where float32 round-off can break positive definiteness);
the column sweep runs in float32, as in the reference implementations. Everything
runs on the weight's device.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch

from junkdna_core.compress.base import LayerStats
from junkdna_core.config.errors import ConfigError

logger = logging.getLogger(__name__)

# Extra damping tried, as fractions of the mean Hessian diagonal, when a factorization fails.
_EXTRA_DAMPING = (0.01, 0.1, 1.0)


def check_calibrated_inputs(
    method: str,
    weights: Mapping[str, torch.Tensor],
    stats: Mapping[str, LayerStats] | None,
) -> Mapping[str, LayerStats]:
    """Raise ConfigError unless every weight is 2-D and has finite statistics of matching size."""
    if stats is None:
        raise ConfigError(f"{method} needs calibration statistics (stats=None was given)")
    finite: dict[int, bool] = {}  # layers reading one input share one LayerStats: check it once
    for name, weight in weights.items():
        if weight.dim() != 2:
            raise ConfigError(f"{method}: weight {name} must be 2-D (out, in); got shape {tuple(weight.shape)}")
        if name not in stats:
            raise ConfigError(f"{method}: no calibration statistics for layer {name}; have {sorted(stats)}")
        layer = stats[name]
        n_in = weight.shape[1]
        if tuple(layer.gram.shape) != (n_in, n_in):
            raise ConfigError(
                f"{method}: gram of layer {name} has shape {tuple(layer.gram.shape)}, expected ({n_in}, {n_in})"
            )
        if isinstance(layer.tokens, bool) or not isinstance(layer.tokens, int) or layer.tokens < 1:
            raise ConfigError(f"{method}: layer {name} needs a positive token count; got {layer.tokens!r}")
        if id(layer) not in finite:
            finite[id(layer)] = bool(torch.isfinite(layer.gram).all())
        if not finite[id(layer)]:
            raise ConfigError(f"{method}: calibration statistics of layer {name} contain NaN or inf")
    return stats


def damped_hessian(
    stats: LayerStats, percdamp: float, *, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The damped Hessian ``2 gram / tokens`` (float64) and the bool mask of dead input columns.

    A dead column (an input that was always zero) gets ``H_ii = 1``; then
    ``percdamp * mean(diag H)`` is added to the diagonal.
    """
    gram = stats.gram.to(device=device if device is not None else stats.gram.device, dtype=torch.float64)
    hessian = 2.0 * gram / stats.tokens
    diagonal = torch.diagonal(hessian)
    dead = diagonal == 0
    diagonal[dead] = 1.0
    diagonal += percdamp * diagonal.mean()
    return hessian, dead


def _cholesky(matrix: torch.Tensor, *, upper: bool) -> torch.Tensor | None:
    factor, info = torch.linalg.cholesky_ex(matrix, upper=upper)
    return factor if int(info) == 0 else None


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run LAPACK on one thread: MKL's blocked Cholesky rounds differently per thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _inverse_factor(hessian: torch.Tensor) -> torch.Tensor | None:
    """``U`` with ``hessian^-1 = U^T U``, from one Cholesky factorization and one triangular inverse.

    With ``J`` the exchange matrix and ``J H J = L L^T``: ``H^-1 = (J L^-1 J)^T (J L^-1 J)``, and
    ``J L^-1 J`` is upper triangular with a positive diagonal, so it is the upper Cholesky factor
    of ``H^-1``. Half the work of factorizing ``H``, inverting it and factorizing the inverse.
    """
    with _one_thread():
        flipped = hessian.flip(0, 1)
        lower = _cholesky(flipped, upper=False)
        if lower is None:
            return None
        eye = torch.eye(lower.shape[0], dtype=lower.dtype, device=lower.device)
        return torch.linalg.solve_triangular(lower, eye, upper=False).flip(0, 1)


def inverse_cholesky(hessian: torch.Tensor, *, layer: str = "") -> torch.Tensor:
    """The upper Cholesky factor ``U`` of ``hessian^-1`` (``hessian^-1 = U^T U``).

    If ``hessian`` is not numerically positive definite, retries with extra
    diagonal damping (logged as a warning naming the amount); raises
    ``torch.linalg.LinAlgError`` if even the largest retry fails.
    """
    factor = _inverse_factor(hessian)
    if factor is not None:
        return factor
    mean_diag = float(torch.diagonal(hessian).mean())
    eye = torch.eye(hessian.shape[0], dtype=hessian.dtype, device=hessian.device)
    for fraction in _EXTRA_DAMPING:
        factor = _inverse_factor(hessian + fraction * mean_diag * eye)
        if factor is not None:
            logger.warning(
                "Hessian of layer %s is not positive definite; added extra damping %g x mean diagonal",
                layer or "?", fraction,
            )
            return factor
    raise torch.linalg.LinAlgError(
        f"Hessian of layer {layer or '?'} is not positive definite even with extra damping "
        f"{_EXTRA_DAMPING[-1]} x mean diagonal; check the calibration statistics"
    )


@dataclass(frozen=True)
class Factors:
    """What a column sweep needs from one layer's statistics, shared by the layers that read the same input.

    ``factor``: the float32 upper Cholesky factor of the inverse damped Hessian
    (columns permuted by ``perm`` when set); ``dead``: input columns that were
    always zero; ``perm``: with ``act_order``, the sweep order (descending
    Hessian diagonal, ties in index order), else None.
    """

    factor: torch.Tensor
    dead: torch.Tensor
    perm: torch.Tensor | None

    def work_copy(self, weight: torch.Tensor) -> torch.Tensor:
        """A float32 copy of ``weight`` with dead columns zeroed, in sweep order."""
        work = weight.detach().to(torch.float32).clone()
        work[:, self.dead] = 0.0
        return work if self.perm is None else work[:, self.perm]


def factorize(
    stats: LayerStats, percdamp: float, *, device: torch.device | str, layer: str = "", act_order: bool = False
) -> Factors:
    """The :class:`Factors` of one layer's statistics, on ``device``."""
    hessian, dead = damped_hessian(stats, percdamp, device=device)
    perm = None
    if act_order:
        perm = torch.argsort(torch.diagonal(hessian), descending=True, stable=True)
        hessian = hessian[perm][:, perm]
    return Factors(inverse_cholesky(hessian, layer=layer).to(torch.float32), dead, perm)


def factorize_all(
    weights: Mapping[str, torch.Tensor],
    stats: Mapping[str, LayerStats],
    percdamp: float,
    *,
    act_order: bool = False,
) -> dict[str, Factors]:
    """:func:`factorize` for every layer, once per distinct LayerStats object (q/k/v and gate/up share theirs)."""
    done: dict[int, Factors] = {}
    out = {}
    for name, weight in weights.items():
        layer = stats[name]
        if id(layer) not in done:
            done[id(layer)] = factorize(layer, percdamp, device=weight.device, layer=name, act_order=act_order)
        out[name] = done[id(layer)]
    return out
