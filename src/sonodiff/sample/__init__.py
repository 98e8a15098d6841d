"""Batched, sharded, seeded generation of synthetic images from a trained model.

    write_sampling_plan(cfg, "results/augment/camus/manifest.csv", ".../samples/camus/bmaps/plan.csv")
    sample_shard(cfg, "model.pt", ".../plan.csv", ".../shards/0/manifest.csv", shard=0, shards=2,
                 sector="results/data/camus/sector.png")
    gather(cfg, [".../shards/0/manifest.csv", ".../shards/1/manifest.csv"], ".../plan.csv",
           ".../samples/camus/bmaps/manifest.csv")
    write_reverse_snapshots("model.pt", dataset, ".../samples/camus/bmaps/snapshots.npz")

Plan (:mod:`~sonodiff.sample.plan`). A semantic model samples one image per augmented label map
(``augment.splits``, train and val), at most ``sample.max_label_maps`` of them (a seeded
subset); an unconditional model samples ``sample.count`` images (``split`` = val, the rows
metrics compare with the real val images). The plan is written down once (``plan.csv``) and
read by every shard and by the gather step.

Seeds and shards. Image ``i`` gets the seed ``derive_seed(seed, "sample", sample_id_i)``; its
initial noise and every step's noise come from a generator with that seed alone
(:mod:`sonodiff.diffusion.sampling`). Jobs, sorted by ``sample_id``, are cut into batches of
``sample.batch_size`` *before* sharding (the plan's ``batch`` column), and shard i of n takes
the batches b with b mod n = i: every image is computed in the same batch, with the same
neighbours, sharded or not, so the gathered set is pixel-identical to an unsharded run (on a
deterministic device; a batch-size-independent model would not even need this).

Each step evaluates ``eps_hat = (1 + w) eps(x|y) - w eps(x|null)`` (classifier-free guidance in
Ho & Salimans' convention, w = ``sample.guidance_scale``, or w = s - 1 from SDM's
``sample.guidance_scale_sdm`` s, :func:`sonodiff.config.guidance_weight`; w = 0 evaluates the
conditional model alone) and runs
the sampler ``sample.sampler`` (ancestral or DDIM with ``sample.eta``) over ``sample.steps``
respaced steps (:mod:`~sonodiff.sample.generate`); with ``sample.mask_sector`` every image is
black outside the dataset's sector mask, as the real images are. The reverse-process snapshots
of the papers' fig. 3 are a sample-stage output too (:mod:`~sonodiff.sample.snapshots`).
"""

from sonodiff.sample.generate import (
    apply_sector, configured_mask, configured_process, generate, guided_fn, read_label_maps, read_sector_mask,
)
from sonodiff.sample.plan import sampling_jobs, shard_batches, write_sampling_plan
from sonodiff.sample.shards import gather, sample_all, sample_shard, shard_manifest_path
from sonodiff.sample.snapshots import reverse_chain, write_reverse_snapshots

__all__ = [
    "apply_sector", "configured_mask", "configured_process", "gather", "generate", "guided_fn", "read_label_maps",
    "read_sector_mask", "reverse_chain", "sample_all", "sample_shard", "sampling_jobs", "shard_batches",
    "shard_manifest_path", "write_reverse_snapshots", "write_sampling_plan",
]
