"""Metrics: the papers' image metrics and ultrasound-physics metrics, with bootstrap intervals.

- :mod:`~sonodiff.metrics.fid`: FID with pytorch-fid's Inception (1st/2nd max-pool, pool3);
- :mod:`~sonodiff.metrics.paired`: LPIPS, SSIM, PSNR between a synthetic image and its real one;
- :mod:`~sonodiff.metrics.physics`: depth profile, speckle SNR, per-label Wasserstein, gCNR;
- :mod:`~sonodiff.stats`: 95% percentile intervals over images, figure records;
- :mod:`~sonodiff.metrics.weights`: pretrained weights offline (config path or torch hub cache);
- :mod:`~sonodiff.metrics.evaluate`: the stage's entry points used by the rule scripts.
"""
