"""A griffe extension for the documentation site: the relaxed operations of ``avcompile.ops``
(``gt``, ``argmax``, ...) are made by factories when the module is imported, so its source shows
no ``def`` (nor docstring) for them; they are taken from the imported module instead."""

import importlib

import griffe

RUNTIME_MODULES = ("avcompile.ops",)


class RuntimeMembers(griffe.Extension):
    """In the listed modules, every name of ``__all__`` that the source does not define as a
    function or class is taken from the imported module."""

    def on_module_members(self, *, mod, agent, **kwargs):
        if isinstance(agent, griffe.Inspector) or mod.path not in RUNTIME_MODULES:
            return
        imported = griffe.inspect(mod.path)
        for name in importlib.import_module(mod.path).__all__:
            static = mod.members.get(name)
            if static is None or static.is_attribute:
                mod.set_member(name, imported.members[name])
