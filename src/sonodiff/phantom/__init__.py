"""Physics-simulated phantom datasets (pymust B-mode) in the real datasets' on-disk layouts.

``phantom_camus``: apical 2CH/4CH cardiac views at ED and ES (labels 0 background, 1 LV cavity,
2 myocardium, 3 left atrium) imaged by a 75-degree phased-array sector, written as the CAMUS
NIfTI release. ``phantom_segthy``: 3-D neck volumes (thyroid, carotids, jugulars, trachea as air)
imaged slice by slice by a linear array, written as the SegThy volunteer dataset.
``phantom_liver``: unlabelled abdominal planes (liver parenchyma, hepatic and portal veins, capsule,
diaphragm) imaged by a convex array, a few parallel planes per patient, written as a folder of PNGs.
``phantom_busi``: breast images (skin, subcutaneous fat, Cooper ligaments, fibroglandular tissue,
pectoralis) imaged by a 7.6 MHz linear array, one per patient, balanced over normal, benign (an
anechoic oval cyst with posterior enhancement) and malignant (a hypoechoic spiculated mass with
posterior shadowing), with lesion masks (label 1), written as the BUSI dataset.

Modules: :mod:`probe` (the :class:`~sonodiff.phantom.probe.Transducer`: geometry, beam grid, scan
conversion), :mod:`bmode` (SIMUS and fast convolution models, envelope, log compression),
:mod:`tissue` (scenes, echogenicity, texture, attenuation), :mod:`cardiac`, :mod:`neck`, :mod:`liver` and
:mod:`breast` (anatomies),
:mod:`raw_layout` (the raw datasets' files), :mod:`simulate` (datasets).
"""

from sonodiff.phantom.bmode import FastModel, Physics, SimusModel, Simulator
from sonodiff.phantom.probe import ABDOMEN, BREAST, CARDIAC, NECK, Transducer
from sonodiff.phantom.simulate import (simulate_busi, simulate_camus, simulate_liver, simulate_phantom,
                                      simulate_segthy)

__all__ = [
    "ABDOMEN", "BREAST", "CARDIAC", "NECK", "FastModel", "Physics", "SimusModel", "Simulator", "Transducer",
    "simulate_busi", "simulate_camus", "simulate_liver", "simulate_phantom", "simulate_segthy",
]
