"""Notify's HTTP API, one module per resource: alerts (list, stream, actions), silences, dealers."""
