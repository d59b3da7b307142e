"""Plugin schemas turned into what users write formas with: Pkl classes (``formae schema pkl``).

``pkl/formae.pkl`` is formae's own Pkl module (a forma amends it); ``pkl.py`` generates a module of
typed classes per namespace from the schemas its plugin announces.
"""

from pathlib import Path

from formae.schema.pkl import pkl_module

BASE_MODULE = Path(__file__).parent / "pkl" / "formae.pkl"
"""formae's Pkl module, shipped with the package."""

__all__ = ["BASE_MODULE", "pkl_module"]
