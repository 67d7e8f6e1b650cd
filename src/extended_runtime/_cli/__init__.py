"""`xrs`, the command line: `main` holds the click group, one module per command below it."""
