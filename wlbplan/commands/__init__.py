"""One module per CLI command: parse options, call the library, render, return the exit code."""
