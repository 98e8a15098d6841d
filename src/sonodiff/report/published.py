"""Published values of Domínguez et al. 2024, tables 1 and 2, for side-by-side reading.

"Diffusion as Sound Propagation: Physics-inspired Model for Ultrasound Image Generation"
(MICCAI 2024). Values as printed (three decimals). ``baseline`` is the paper's "Baseline"
(SDM / Guided-Diffusion without B-maps), ``proposed`` its "Proposed method" / "Our Method"
(with B-maps). FID keys are pytorch-fid feature dims: 64 = 1st max-pool, 192 = 2nd max-pool.
"""

from __future__ import annotations

SOURCE = "Domínguez et al. 2024, tables 1-2"

#: Table 1: FID[paper dataset][baseline|proposed][dims].
FID: dict[str, dict[str, dict[int, float]]] = {
    "Thyroid": {"baseline": {64: 4.259, 192: 14.315}, "proposed": {64: 0.619, 192: 2.769}},
    "CAMUS": {"baseline": {64: 3.581, 192: 12.769}, "proposed": {64: 0.204, 192: 0.959}},
    "Liver": {"baseline": {64: 20.746, 192: 73.447}, "proposed": {64: 0.192, 192: 0.867}},
}


def _stats(**metrics: tuple[float, float, float]) -> dict[str, dict[str, float]]:
    """``lpips=(mean, std, range), ...`` as ``{"lpips": {"mean": ..., "std": ..., "range": ...}, ...}``."""
    return {name: dict(zip(("mean", "std", "range"), values)) for name, values in metrics.items()}


#: Table 2: PAIRED[baseline|proposed][paper dataset][lpips|ssim|psnr][mean|std|range].
PAIRED: dict[str, dict[str, dict[str, dict[str, float]]]] = {
    "baseline": {
        "Thyroid": _stats(lpips=(0.362, 0.129, 0.628), ssim=(0.279, 0.137, 0.523), psnr=(14.302, 5.526, 19.707)),
        "CAMUS": _stats(lpips=(0.234, 0.127, 0.534), ssim=(0.265, 0.131, 0.587), psnr=(13.118, 4.511, 18.899)),
    },
    "proposed": {
        "Thyroid": _stats(lpips=(0.316, 0.066, 0.321), ssim=(0.292, 0.094, 0.451), psnr=(16.798, 2.468, 11.549)),
        "CAMUS": _stats(lpips=(0.161, 0.047, 0.266), ssim=(0.297, 0.092, 0.523), psnr=(15.871, 2.545, 10.420)),
    },
}

#: Our dataset names or formats -> the paper's dataset (first match wins; names before formats).
DATASET_BY_NAME = (("camus", "CAMUS"), ("segthy", "Thyroid"), ("thyroid", "Thyroid"), ("liver", "Liver"))
DATASET_BY_FORMAT = {"camus": "CAMUS", "segthy": "Thyroid"}


def paper_dataset(name: str, fmt: str | None = None) -> str | None:
    """The paper's dataset a config dataset corresponds to (by name, then format), or None."""
    lowered = name.lower()
    for key, paper in DATASET_BY_NAME:
        if key in lowered:
            return paper
    return DATASET_BY_FORMAT.get(fmt or "")


def paper_variant(b_min: float | None) -> str | None:
    """``baseline`` for B-maps off (b_min = 1), ``proposed`` for B-maps on (b_min < 1)."""
    if b_min is None:
        return None
    return "baseline" if b_min >= 1.0 else "proposed"
