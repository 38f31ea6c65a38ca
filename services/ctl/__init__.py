"""The operators' command line beside the servers (like amtool beside Alertmanager):
`dealerwatch alerts ...` and `dealerwatch silences ...` talk to notify's API (client.py),
`dealerwatch dlq ...` to the broker's dead-letter queue (dlq.py), `dealerwatch export|import`
to the database (backup.py), `dealerwatch demo` to ingest (demo.py)."""
