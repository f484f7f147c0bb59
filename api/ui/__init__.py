"""Static files of the compliance officer's web page (served by api/routers/ui.py)."""
