"""Client commands: each takes a backend and plain arguments and returns data (never prints, no argparse).

The CLIs in client/*.py parse flags, call one of these and hand the result to client.render.
"""
