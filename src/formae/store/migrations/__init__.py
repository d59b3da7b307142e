"""Numbered SQL migrations, one folder per dialect (``sqlite/``, ``postgres/``).

This is a package only so that ``importlib.resources`` can find the ``.sql`` files.
"""
