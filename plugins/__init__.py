"""First-party plugins. They register through the same hooks as any third-party plugin.

probebank.plugins.BUILTIN_PLUGINS lists these modules. Each is imported whenever the plugins are
loaded (by every command), so a module imports the engine parts it registers inside its hooks:
listing the bank then loads no model or probing code.
"""
