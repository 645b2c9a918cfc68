"""The runtimes behind `model.base.Runtime`, one module each, imported only when used."""
