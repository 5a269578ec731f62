"""The clinical rules: one module per concept, each stating its rule once as SQL models (`MODELS`) with
named parameters (`Parameters`). Found by `timeline.projections.graph`; nothing lists them by hand."""
