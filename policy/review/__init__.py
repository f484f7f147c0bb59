"""The policy reviewer's tools, built on the decision core (``policy``), which never imports them.

``check`` (is a bundle fit to serve), ``testing`` (Rego tests and coverage), ``impact`` with
``replay``, ``diff`` and ``markdown`` (what a change would do to recorded decisions), and
``gitinfo`` (a directory's commit, a tree at a ref).
"""
