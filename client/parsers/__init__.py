"""Each subcommand's flags and the wiring from them to a command: the only argparse in the client.

One module per subcommand of `comfy-runpod` (listed in client.cli.COMMANDS), each with HELP,
`add_arguments(p)`, optional `check_arguments(p, args)` and `label(args)`, and
`run(args, renderer) -> (data, exit code)`: it builds the settings and the backend (client.parsers.shared),
calls one function of client/commands/ and hands its data back for client.render to print.
"""
