"""Support (#24): where to send people and vehicles next (priorities.py), what each support did
(evaluations.py), and their endpoints (api.py)."""
