"""A simulated insurer that writes the real log formats, with planted insiders.

``simulate(out, params)`` writes ``reference/`` (HR, accounts, assets,
entitlements, web policy, the client master), ``logs/`` (PostgreSQL csvlog with
pgAudit, the CRM access log, Squid, Winlogbeat), ``endpoint/<host>/...`` and
``leaked/`` files, and ``truth.json``: which scenarios were planted, when, by whom,
the benign look-alikes, and (under ``"world"``) the habits this seed drew for its
company (:mod:`molehunt.simulate.habits`, :mod:`molehunt.simulate.workforce`): each
seed is another company, so detection is never scored on one world only. Scenarios
are registered in
:data:`molehunt.simulate.scenarios.SCENARIOS` and :data:`~molehunt.simulate.scenarios.DECOYS`.
"""

from __future__ import annotations

from molehunt.simulate.run import PRESETS, Params, Result, params_for, simulate
from molehunt.simulate.scenarios import DECOYS, SCENARIOS

__all__ = ["DECOYS", "PRESETS", "SCENARIOS", "Params", "Result", "params_for", "simulate"]
