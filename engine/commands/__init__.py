"""One module per `dfatlas` sub-command; see `engine.cli.COMMAND_MODULES`."""
