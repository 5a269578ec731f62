"""`timeline serve`: a read-only local browser view of the projections.

`app` (the Starlette app and its handlers), `cohort` and `patient` (each page's content from one view of the
projections), `charts` (Vega-Lite specifications), `server` (the app in a thread; screenshots with the system's
Chromium), `templates/` (Jinja, autoescaped), `static/` (the page script and style, and in `vendor/` the Vega,
Vega-Lite and vega-embed files with their licences: nothing is loaded from another host).
"""
