"""Offer allocation: the DRF sorters (who is furthest below their fair share)
kept apart from the allocator (which agent's resources go to whom)."""

from orbiter.master.allocator.allocator import (
    AgentView,
    FrameworkView,
    OfferFilter,
    OfferPlan,
    allocate,
)
from orbiter.master.allocator.sorter import DRFSorter, RoleSorter

__all__ = [
    "AgentView",
    "DRFSorter",
    "FrameworkView",
    "OfferFilter",
    "OfferPlan",
    "RoleSorter",
    "allocate",
]
