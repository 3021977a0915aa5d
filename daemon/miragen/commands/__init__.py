"""Subcommands of ``miragen``: one module each, discovered by ``miragen.cli``.

A module here must define ``register(subparsers)`` that adds its parser and sets
``func=handler`` (handler(args) -> exit code). Keep heavy imports inside the handler.
"""
