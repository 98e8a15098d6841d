"""sonodiff: synthetic ultrasound images with B-map diffusion models.

The package behind the Snakemake workflow: data preparation, the B-map diffusion core,
models, training, sampling, metrics, the segmentation check and the report.
"""

__version__ = "0.1.0"
