"""The dealer records, beside alerting: the dealer file (timeline, weekly sales), the network
(master data, outlets, visit plans), promotion evaluations, dealer feedback, their reports and
their API. Fed by the dealer-file queue and the rules' evaluations; reads the alerts only to show
them in the file. The next report on dealer records goes here: its rows in a module of its own,
its endpoint in reports.py."""
