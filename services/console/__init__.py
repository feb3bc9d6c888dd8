"""The member console: profiling units' workspace in a browser (`apihub serve console`).

Officers of a member sign in with their own accounts (services.console.users), work the member's hit queue, record
dispositions, manage the member's watchlist and rules, and see the member's oversight figures. The console reaches
the hub through the router's member-scoped gRPC services and Kafka topics like any other client (its gateway), reads
hits with its own cursor (reader "console"), and checks on the server, for every request, that the officer's member
owns what is asked for.
"""
