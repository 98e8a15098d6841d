"""Downstream classification check (Freiche et al. 2025, section 3.1.2).

A ResNet (torchvision, from scratch) is trained on one *source* of images with a ``class`` column
(BUSI: benign / malignant / normal): ``real`` (the train split), ``real+synthetic_<variant>``
(plus the generated images, their prompts' classes) or ``synthetic_<variant>`` (generated images
alone, e.g. from a generator trained on a fraction of the train split), for the same number of
steps whatever the source's size, once per seed of ``classify.seeds``; each seed scores the real
test split and, when configured, an external prepared dataset (the paper: Yap et al. 2017,
dataset B). AUC is the one-vs-rest macro AUC over the classes a test set holds, with a 95%
interval resampling test patients; sources are compared by paired differences on the same test
images.

Modules: :mod:`~sonodiff.classify.auc` (AUC from ranks; NumPy), :mod:`~sonodiff.classify.data`
(sources, training and test sets; NumPy), :mod:`~sonodiff.classify.train` (the network, training
per seed, scoring, the whole job; torch), :mod:`~sonodiff.classify.evaluate` (AUC figures, paired
differences, the table's summary; NumPy). The table is :mod:`sonodiff.report.classification_table`.
"""
