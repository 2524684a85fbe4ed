"""The `preforch` command line: one table of commands, each a config class and the job it runs."""
