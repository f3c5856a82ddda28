"""After-the-fact reports: the summary text, the run report, the ``report`` and ``analyze`` commands."""
