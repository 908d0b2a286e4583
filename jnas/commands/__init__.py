"""The `jnas` subcommands, one module each (`jnas.cli` parses the arguments)."""
