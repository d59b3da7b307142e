"""Loading formas: Pkl, JSON and YAML files (or JSON received over REST) into a validated Forma.

Imports nothing from formae but ``formae.model``.
"""

from formae.forma.errors import FormaError, Problem
from formae.forma.loader import forma_from_json, forma_text, load_forma
from formae.forma.pkl import evaluate_pkl, find_pkl

__all__ = ["FormaError", "Problem", "evaluate_pkl", "find_pkl", "forma_from_json", "forma_text", "load_forma"]
