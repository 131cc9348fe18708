"""The on-instance auto-stop agent (``autostop.py``: one standard-library file, Python 3.7+)."""
