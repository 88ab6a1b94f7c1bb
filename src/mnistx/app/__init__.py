"""The drawing app (`python -m mnistx.serve`): the runs it serves (models), its HTTP server
and JSON endpoint (server), and its one page (static/: HTML, CSS and JavaScript, nothing
fetched from elsewhere)."""
