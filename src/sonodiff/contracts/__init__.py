"""The on-disk hand-offs between stages: one owner for every file one stage writes and another reads.

Stages never import one another; they exchange files, and every file name, column list and
reader/writer of those files lives here (``docs/architecture.md`` has the table):

- :mod:`~sonodiff.contracts.layout`: where each contract lives in the results tree (the rules'
  paths come from here);
- :mod:`~sonodiff.contracts.manifest`: CSV manifests with paths relative to their own folder;
- :mod:`~sonodiff.contracts.dataset`: the prepared dataset (manifest, ``dataset.json``, sector
  mask, images and label maps, probe geometry, depth map);
- :mod:`~sonodiff.contracts.labelmaps`: the augmented label maps;
- :mod:`~sonodiff.contracts.model_file`: a trained diffusion model and its training log;
- :mod:`~sonodiff.contracts.samples`: a sample set, its job plan and reverse-process snapshots;
- :mod:`~sonodiff.contracts.metrics_record`: the metrics of one dataset and variant, the real
  set's FID statistics and the metric weights' status;
- :mod:`~sonodiff.contracts.segmentation`: a segmenter's record, predictions and the leakage check.

This layer sits on the base modules (``errors``, ``io``, ``seeds``, ``device``, ``config``) and the
engine's pure functions (depth maps of :mod:`sonodiff.diffusion.depth`, networks of
:mod:`sonodiff.models`), never on a stage.
"""
