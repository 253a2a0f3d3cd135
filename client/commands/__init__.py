"""Client commands: each takes a backend and plain arguments and returns data (never prints, no argparse).

The parsers in client/parsers/ read the flags, call one of these and hand the data to client.render.
"""
