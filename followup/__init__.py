"""The "was it fixed?" follow-up: asked some weeks after a closure, answered on the tracking page."""
