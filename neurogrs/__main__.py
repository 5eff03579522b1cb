from neurogrs.cli import run

run()
