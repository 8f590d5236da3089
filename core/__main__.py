from probebank.cli import entry

entry()
