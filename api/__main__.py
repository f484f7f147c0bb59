"""``python -m api`` is the ``clearance`` command."""

from api.cli import app

app(prog_name="clearance")
