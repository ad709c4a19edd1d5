from nnspec.cli.main import entry

entry()
