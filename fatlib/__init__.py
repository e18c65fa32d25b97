"""fatlib — reproducing FAT (Zahid et al., 2020) and FT-DeepNets (Baek et al., WACV 2022).

Modules, named after the papers' words: :mod:`fatlib.data`, :mod:`fatlib.models`,
:mod:`fatlib.training`, :mod:`fatlib.injection`, :mod:`fatlib.store`, :mod:`fatlib.profiles`,
:mod:`fatlib.book` (the notebook runner). Submodules are imported on use so that
``import fatlib`` stays fast.
"""
__version__ = "0.1.0"
