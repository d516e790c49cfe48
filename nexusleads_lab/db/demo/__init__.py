"""Deterministic, realistic demo data for the PLG lead schema, bulk-loaded with COPY.

``load_demo_data(conn)`` fills the lead tables (organizations ... outreach_events) with a
product-led-growth team's world: a few organizations and their users, projects that track
real-looking GitHub repositories, the repositories' contributors, lead scores per project
and the outreach logged against them.

Everything derives from one seed (``numpy.random.default_rng``) and a fixed anchor date, so
the same seed and size give byte-identical rows on any machine. Generation is vectorised
with numpy and streamed to the server with ``COPY`` in chunks of contributors, so a million
contributors load in bounded memory; the whole load is one transaction.

One job per module: the catalogue (names, companies, repositories, places...) is data, in
``catalogue.json`` (read by :mod:`.catalogue`); :mod:`.generate` turns it and the seed into rows;
:mod:`.load` COPYs them in and records the seeding; :mod:`.reset` tells drift from the seeding
and restores it.
"""

from __future__ import annotations

from .catalogue import INJECTION_BIO, INJECTION_LOGIN, ORGS, PROJECTS, SHOWCASE
from .generate import DEFAULT_CONTRIBUTORS, DEFAULT_SEED
from .load import DemoSummary, load_demo_data
from .reset import DemoDrift, count_of, demo_drift, reset_demo

__all__ = [
    "DEFAULT_CONTRIBUTORS",
    "DEFAULT_SEED",
    "INJECTION_BIO",
    "INJECTION_LOGIN",
    "ORGS",
    "PROJECTS",
    "SHOWCASE",
    "DemoDrift",
    "DemoSummary",
    "count_of",
    "demo_drift",
    "load_demo_data",
    "reset_demo",
]
