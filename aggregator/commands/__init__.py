"""The CLI's commands, one module per group; each imported only when run."""
