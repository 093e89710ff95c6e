"""Planted insider scenarios and benign look-alikes, one small class each.

Each class picks its people, days and sizes from the seed in :meth:`plan`, acts
on each day in :meth:`day` through :class:`~molehunt.simulate.world.World` (so
its traces look like everyone else's), leaves files behind in :meth:`finish`,
and says what it did in :meth:`truth`. The base class and its context are in
:mod:`~molehunt.simulate.scenarios.base`, the insiders and :data:`SCENARIOS` in
:mod:`~molehunt.simulate.scenarios.insiders`, the decoys and :data:`DECOYS` in
:mod:`~molehunt.simulate.scenarios.decoys` (split for size, issue 15).
"""

from __future__ import annotations

import numpy as np

from molehunt.simulate.scenarios.base import Context, Scenario
from molehunt.simulate.scenarios.decoys import DECOYS
from molehunt.simulate.scenarios.insiders import SCENARIOS

__all__ = ["DECOYS", "SCENARIOS", "Context", "Scenario", "np"]
