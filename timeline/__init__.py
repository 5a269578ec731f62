"""timeline: an event-sourced patient timeline engine for stem-cell transplant outcomes research."""

__version__ = "0.1.0"
