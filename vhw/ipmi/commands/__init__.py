"""The command handlers, one module per NetFn (or command group).

Importing a module registers nothing: each handler declares its row with
``vhw.ipmi.core.bmc.command`` and ``vhw.ipmi.core.assemble.command_table`` builds the
table from ``COMMAND_MODULES``.
"""
