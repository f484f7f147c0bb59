"""What ``policy`` and ``audit`` share without depending on each other: the error root.

Nothing else belongs here; it imports nothing of Clearance's own.
"""
