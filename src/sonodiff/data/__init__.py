"""Raw datasets to the prepared-dataset contract.

- :mod:`download`: resumable, verified download and safe archive extraction (:func:`fetch_source`).
- :mod:`camus`, :mod:`segthy`, :mod:`busi`, :mod:`folder`: converters listing :class:`units.Unit`.
- :mod:`readers`, :mod:`units`, :mod:`slicing`, :mod:`labels`: reading, checking, 3D -> 2D.
- :mod:`sector`, :mod:`split`: sector masks by thresholding, patient-level splits.
- :mod:`prepare`: :func:`prepare_dataset` writes the prepared dataset (manifest, PNGs, sector mask,
  ``dataset.json``) through :mod:`sonodiff.contracts.dataset`.
"""
